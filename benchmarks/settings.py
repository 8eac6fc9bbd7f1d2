"""The Django project every server under test runs (``DJANGO_SETTINGS_MODULE``).

Environment (set by :mod:`benchmarks.runner`):

``BENCH_SETTINGS``
    the configuration's settings: ``tuned`` (the default, below),
    ``quickstart`` or ``deployment`` (the documented configurations, read
    from the docs by :mod:`benchmarks.configurations`).
``BENCH_DATABASE_URL``
    the tuned configuration's database:
    ``postgres://user@host:port/bench_sophie`` or ``sqlite:////path/bench.sqlite3``.
``BENCH_MODEL_URL``
    the fake model's base URL, ending in ``/v1`` (the documented
    configurations read ``OPENAI_BASE_URL`` and ``OPENAI_API_KEY``, as the
    quickstart says).
``BENCH_SITE_SETTINGS``, ``BENCH_REDIS_PREFIX``, ``REDIS_URL``, ``DATABASE_URL``
    the documented configurations': the ``settings.py`` of the site made by
    the quickstart's steps, the prefix of the run's Redis keys, and what the
    deployment page's block reads.

What the tuned configuration changes from Sophie's defaults, and why:

* the rate limit is an allowance of 1,000,000 messages a minute, and the
  connection caps are 50,000, because every simulated visitor connects from
  127.0.0.1: the benchmark measures the cost of limiting, never a refusal
  (the documented configurations get the same, and nothing else:
  :func:`benchmarks.configurations.layers`);
* the database connection is persistent (``CONN_MAX_AGE = None``): Django's
  default of 0 opens a new connection for every unit of work;
* SQLite runs in WAL mode with ``synchronous=NORMAL``.

Everything else is the embedded default: the in-memory channel layer, the
local-memory cache (response cache and rate limiter), the database knowledge
source, the OpenAI backend (the official SDK, over aiohttp when
``benchmarks/requirements.txt`` is installed) pointed at the fake model.
The rest (language, time zone, caches, silenced checks) is the test suite's
base, ``tests/support/settings.py``, for every configuration: only the chat's
apps, ``DEBUG`` off.
"""

import os
from pathlib import Path
from urllib.parse import urlparse

from tests.support.settings import *  # noqa: F403
from tests.support.settings import postgres_database, server_logging

SECRET_KEY = "sophie-chat-benchmark-not-secret"
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "benchmarks.urls"
ASGI_APPLICATION = "benchmarks.asgi.application"
# Only what the chat needs: every app and middleware costs on every request.
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "channels",
    "sophie_chat",
]
MIDDLEWARE = [
    "django.middleware.common.CommonMiddleware",
]
TEMPLATES: list[dict] = []
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

_url = urlparse(os.environ.get("BENCH_DATABASE_URL", "sqlite:////tmp/sophie-bench.sqlite3"))
if _url.scheme in ("postgres", "postgresql"):
    DATABASES = {
        "default": {
            **postgres_database(
                _url.geturl(), NAME="bench_sophie", USER="postgres", HOST="127.0.0.1", PORT="5432"
            ),
            "CONN_MAX_AGE": None,
        }
    }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": _url.path,
            "CONN_MAX_AGE": None,
            "OPTIONS": {
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
            },
        }
    }

SOPHIE_CHAT = {
    "LLM": {
        "BACKEND": "sophie_chat.llm.openai.OpenAIBackend",
        "OPTIONS": {
            "model": "gpt-4o-mini",
            "api_key": "sk-bench",
            "base_url": os.environ.get("BENCH_MODEL_URL", "http://127.0.0.1:8100/v1"),
            "max_retries": 0,
        },
    },
    "RATE_LIMIT": {"OPTIONS": {"rate": "1000000/m", "burst": None}},
    "MAX_CONNECTIONS_PER_PROCESS": 50_000,
    "MAX_CONNECTIONS_PER_CLIENT": 50_000,
    "SESSION_START_RATE": None,
    # The runner reads the open connections from chat/health/.
    "HEALTH_DETAILS": True,
}

PROFILE = os.environ.get("BENCH_SETTINGS", "tuned")
if PROFILE != "tuned":
    from benchmarks.configurations import benchmark_settings

    globals().update(
        benchmark_settings(
            PROFILE,
            Path(os.environ["BENCH_SITE_SETTINGS"]),
            redis_prefix=os.environ.get("BENCH_REDIS_PREFIX", "sophie-bench"),
        )
    )

LOGGING = server_logging("WARNING")
