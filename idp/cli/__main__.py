"""``python -m idp.cli`` is ``idp``."""

import sys

from idp.cli import main

sys.exit(main())
