"""The settings every Django project of the test suite and the benchmark starts from.

Extended by ``tests/settings.py`` (the suite's own, pytest's
``DJANGO_SETTINGS_MODULE``), and through it by ``tests/e2e/settings.py`` and
``tests/production/settings.py`` (the server processes), and by
``benchmarks/settings.py``. Each adds only what differs (its database, its
model, its limits, its logging) and keeps what it reads from the
environment to itself. ``tests/browser/settings.py`` extends the demo's own
settings instead: the browser tests check the demo as ``make demo`` runs it.

Nothing here reads the environment or imports sophie_chat.
"""

from typing import Any
from urllib.parse import urlparse

SECRET_KEY = "sophie-chat-tests-not-secret"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("pt-br", "Português (Brasil)")]
USE_I18N = True
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "sophie_chat",
    "sophie_chat.contrib.pgvector",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
STATIC_URL = "/static/"

# One process: the embedded defaults.
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# DEBUG is off here like production; the embedded defaults (W010: the
# in-memory channel layer, W011: the local-memory cache, W012: the limiter on
# it) are on purpose, and these projects serve no static files (W017).
SILENCED_SYSTEM_CHECKS = [
    "sophie_chat.W010",
    "sophie_chat.W011",
    "sophie_chat.W012",
    "sophie_chat.W017",
]

# Fast hashing: tests create users, they do not protect passwords.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def server_logging(level: str) -> dict[str, Any]:
    """``LOGGING`` of a server process: sophie_chat's records from ``level`` and Django's
    warnings on stderr, which the tests show when one fails (tests/support/processes.py)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"plain": {"format": "%(levelname)s %(name)s: %(message)s"}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "plain"}},
        "loggers": {
            "sophie_chat": {"handlers": ["stderr"], "level": level},
            "django": {"handlers": ["stderr"], "level": "WARNING"},
        },
    }


def postgres_database(url: str, **defaults: str) -> dict[str, Any]:
    """A ``DATABASES`` entry for a ``postgres://`` URL; ``defaults`` (``NAME``, ``USER``,
    ``PASSWORD``, ``HOST``, ``PORT``) for the parts the URL leaves out."""
    parts = urlparse(url)
    given = {
        "NAME": parts.path.lstrip("/"),
        "USER": parts.username or "",
        "PASSWORD": parts.password or "",
        "HOST": parts.hostname or "",
        "PORT": str(parts.port or ""),
    }
    return {
        "ENGINE": "django.db.backends.postgresql",
        **{key: value or defaults.get(key, "") for key, value in given.items()},
    }
