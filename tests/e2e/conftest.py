"""End-to-end tests: live servers (threads, subprocesses, nginx, Apache, a browser), faults
and concurrency. Other connections must see what a test commits, so every test here gets
the ``commits`` app (fresh, tables emptied afterwards) instead of a rolled-back transaction.
"""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
# These flush the shared Redis (and read its counters): never two at once, so under
# pytest-xdist (--dist loadgroup) they share one worker and run one after the other.
SHARED_REDIS = {"test_rate_limits_redis.py", "test_scale_out.py", "test_redis_outage.py"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.commits)
            if Path(str(item.fspath)).name in SHARED_REDIS:
                item.add_marker(pytest.mark.xdist_group("shared-redis"))
