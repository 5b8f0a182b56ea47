"""Migrate the peer's database and register the benchmark's client:
``python setup_bench.py CLIENT_ID SECRET`` (bench/run.py runs it in the peers'
virtualenv). client_credentials, a confidential client, a plain secret
(``hash_client_secret=False``: DOT ≥ 2 hashes secrets by default, and a hashed
secret would put a slow hash on every token request)."""

import os
import sys

import django

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchdot.settings")
django.setup()

from django.core.management import call_command  # noqa: E402
from oauth2_provider.models import Application  # noqa: E402

call_command("migrate", verbosity=0)
Application.objects.create(
    client_id=sys.argv[1], client_secret=sys.argv[2], hash_client_secret=False,
    name="bench-backend", client_type=Application.CLIENT_CONFIDENTIAL,
    authorization_grant_type=Application.GRANT_CLIENT_CREDENTIALS)
print("ok")
