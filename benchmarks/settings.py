"""The Django project every server under test runs (``DJANGO_SETTINGS_MODULE``).

Environment (set by :mod:`benchmarks.runner`):

``BENCH_DATABASE_URL``
    ``postgres://user@host:port/bench_sophie`` or ``sqlite:////path/bench.sqlite3``.
``BENCH_MODEL_URL``
    the fake model's base URL, ending in ``/v1``.

What differs from Sophie's defaults, and why:

* the rate limit is 1,000,000 messages a minute with no burst limit, and the
  connection caps are 50,000, because every simulated visitor connects from
  127.0.0.1: the benchmark measures the cost of limiting, never a refusal;
* the database connection is persistent (``CONN_MAX_AGE = None``): Django's
  default of 0 opens a new connection for every unit of work;
* SQLite runs in WAL mode with ``synchronous=NORMAL``.

Everything else is the embedded default: the in-memory channel layer, the
local-memory cache (response cache and rate limiter), the database knowledge
source, the OpenAI backend (the official SDK, over aiohttp when
``benchmarks/requirements.txt`` is installed) pointed at the fake model.
"""

import os
from urllib.parse import urlparse

SECRET_KEY = "sophie-chat-benchmark-not-secret"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("pt-br", "Português (Brasil)")]
USE_I18N = True
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "benchmarks.urls"
ASGI_APPLICATION = "benchmarks.asgi.application"
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
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

_url = urlparse(os.environ.get("BENCH_DATABASE_URL", "sqlite:////tmp/sophie-bench.sqlite3"))
if _url.scheme in ("postgres", "postgresql"):
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": _url.path.lstrip("/") or "bench_sophie",
            "USER": _url.username or "postgres",
            "PASSWORD": _url.password or "",
            "HOST": _url.hostname or "127.0.0.1",
            "PORT": str(_url.port or 5432),
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

CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

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
}

# The embedded defaults are on purpose here (one process, LocMem, in-memory layer).
SILENCED_SYSTEM_CHECKS = ["sophie_chat.W010", "sophie_chat.W011", "sophie_chat.W012"]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(levelname)s %(name)s: %(message)s"}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {
        "sophie_chat": {"handlers": ["stderr"], "level": "WARNING"},
        "django": {"handlers": ["stderr"], "level": "WARNING"},
    },
}
