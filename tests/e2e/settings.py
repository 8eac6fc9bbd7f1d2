"""Settings of the end-to-end test project: ``tests.settings`` served by a real ASGI server.

The fixtures in ``tests/e2e/conftest.py`` start each server process with
``DJANGO_SETTINGS_MODULE=tests.e2e.settings`` and these environment variables:

``SOPHIE_E2E_DATABASE``
    the SQLite file (migrated before the server starts).
``SOPHIE_E2E_OPENAI_BASE_URL``, ``SOPHIE_E2E_OPENAI_API_KEY``
    where the OpenAI backend sends its requests (the fake OpenAI server).
``SOPHIE_E2E_RATE``
    the message rate per visitor (default ``"1000/m"``).
``SOPHIE_E2E_MAX_CONNECTIONS_PER_CLIENT``
    connections per visitor (default 20).
``SOPHIE_E2E_ALLOW_ANONYMOUS``
    ``"0"`` refuses visitors who are not logged in (default ``"1"``).
``SOPHIE_E2E_TOOLS``
    dotted paths of tools, separated by commas (default: none).
"""

import os

from tests.settings import *  # noqa: F403
from tests.support.settings import server_logging

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ["SOPHIE_E2E_DATABASE"],
        # One writer at a time; a short wait beats a "database is locked" error.
        "OPTIONS": {"timeout": 20},
    }
}

SOPHIE_CHAT = {
    "LLM": {
        "BACKEND": "sophie_chat.llm.openai.OpenAIBackend",
        "OPTIONS": {
            "model": "gpt-4o-mini",
            "api_key": os.environ.get("SOPHIE_E2E_OPENAI_API_KEY", "sk-e2e"),
            "base_url": os.environ["SOPHIE_E2E_OPENAI_BASE_URL"],
            # A failing model should fall back at once, not after retries.
            "max_retries": 0,
            "timeout": 5,
        },
    },
    # No burst limit: every test talks from 127.0.0.1, often several messages a second.
    "RATE_LIMIT": {"OPTIONS": {"rate": os.environ.get("SOPHIE_E2E_RATE", "1000/m"), "burst": None}},
    # Every test starts its conversations from 127.0.0.1.
    "SESSION_START_RATE": "1000/m",
    "RESPONSE_TIMEOUT_SECONDS": 5,
    # A tab that leaves mid-answer: the answer stops soon after, unless the
    # test keeps it longer (``SOPHIE_E2E_STREAM_GRACE``).
    "STREAM_GRACE_SECONDS": float(os.environ.get("SOPHIE_E2E_STREAM_GRACE", "0.5")),
    "MAX_CONNECTIONS_PER_CLIENT": int(
        os.environ.get("SOPHIE_E2E_MAX_CONNECTIONS_PER_CLIENT", "20")
    ),
    "ALLOW_ANONYMOUS": os.environ.get("SOPHIE_E2E_ALLOW_ANONYMOUS", "1") == "1",
    # The fixtures read the open connections from chat/health/.
    "HEALTH_DETAILS": True,
    "TOOLS": [path for path in os.environ.get("SOPHIE_E2E_TOOLS", "").split(",") if path],
}

# The server's stderr is collected by the fixtures and shown when a test fails.
LOGGING = server_logging("INFO")
