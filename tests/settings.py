"""Settings for sophie-chat's own test suite (``tests/support/settings.py`` and what differs).

``DATABASE_URL`` (``postgres://...``) runs the suite on PostgreSQL instead of
SQLite, in the test database ``SOPHIE_TEST_DB_NAME`` (default
``test_sophie_chat``); ``SOPHIE_SQLITE_PATH`` puts the SQLite database in a
file; ``REDIS_URL`` enables the tests marked ``redis``.
"""

import os

from sophie_chat.db import pool_options
from tests.support.settings import *  # noqa: F403
from tests.support.settings import postgres_database

ROOT_URLCONF = "tests.urls"
ASGI_APPLICATION = "tests.asgi.application"

_db_url = os.environ.get("DATABASE_URL", "")
if _db_url.startswith(("postgres://", "postgresql://")):
    DATABASES = {
        "default": {
            **postgres_database(_db_url, NAME="test"),
            "TEST": {"NAME": os.environ.get("SOPHIE_TEST_DB_NAME", "test_sophie_chat")},
            # Django's connection pool, as docs/deployment.md recommends: the whole
            # suite runs Channels' database_sync_to_async over it.
            "CONN_HEALTH_CHECKS": True,
            "OPTIONS": {"pool": pool_options(min_size=1, max_size=4)},
        }
    }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ.get("SOPHIE_SQLITE_PATH", ":memory:"),
            "TEST": {"NAME": os.environ.get("SOPHIE_SQLITE_PATH") or None},
        }
    }

SOPHIE_CHAT = {
    "LLM": {"BACKEND": "sophie_chat.llm.dummy.DummyBackend"},
    # A tab that leaves mid-answer: the answer stops soon after (tests of the
    # grace period itself set their own, see tests/test_flights.py).
    "STREAM_GRACE_SECONDS": 0.2,
}
