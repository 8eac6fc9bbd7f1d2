"""Settings for sophie-chat's own test suite.

``DATABASE_URL`` (``postgres://...``) runs the suite on PostgreSQL instead of
SQLite; ``REDIS_URL`` enables the tests marked ``redis``.
"""

import os
from urllib.parse import urlparse

from sophie_chat.db import check_pooled_connection

SECRET_KEY = "sophie-chat-tests-not-secret"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("pt-br", "Português (Brasil)")]
USE_I18N = True
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "tests.urls"
ASGI_APPLICATION = "tests.asgi.application"
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

_db_url = os.environ.get("DATABASE_URL", "")
if _db_url.startswith(("postgres://", "postgresql://")):
    _u = urlparse(_db_url)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": _u.path.lstrip("/") or "test",
            "USER": _u.username or "",
            "PASSWORD": _u.password or "",
            "HOST": _u.hostname or "",
            "PORT": str(_u.port or ""),
            "TEST": {"NAME": os.environ.get("SOPHIE_TEST_DB_NAME", "test_sophie_chat")},
            # Django's connection pool, as docs/deployment.md recommends: the whole
            # suite runs Channels' database_sync_to_async over it.
            "OPTIONS": {
                "pool": {"min_size": 1, "max_size": 4, "check": check_pooled_connection}
            },
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

CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

SOPHIE_CHAT = {
    "LLM": {"BACKEND": "sophie_chat.llm.dummy.DummyBackend"},
}

# DEBUG is off here like production; the embedded defaults are on purpose.
SILENCED_SYSTEM_CHECKS = ["sophie_chat.W010", "sophie_chat.W011", "sophie_chat.W012"]

# Fast hashing: tests create users, they do not protect passwords.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
