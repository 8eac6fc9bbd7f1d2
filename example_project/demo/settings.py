"""Settings for the sophie-chat demo, Casa Pronta (a home-services marketplace).

Out of the box it needs no services and no API key: SQLite, the in-memory
channel layer, the local-memory cache, and the offline answer engine, which
replies from the knowledge base (``make demo`` does this)::

    cd example_project
    python manage.py migrate          # also creates the demo accounts
    python manage.py populate_knowledge_base knowledge/home_services.json
    python manage.py runserver 127.0.0.1:8000

Environment variables switch parts to real services:

``OPENAI_API_KEY``
    Answer with OpenAI: model ``OPENAI_MODEL`` (default ``gpt-4o-mini``),
    which may also call the demo's tools (demo/tools.py: services, bookings,
    quotes).
    ``OPENAI_BASE_URL`` points it at any OpenAI-compatible server instead
    (Ollama, vLLM, llama.cpp).
``REDIS_URL``
    e.g. ``redis://127.0.0.1:6379/0``: the channels-redis channel layer and
    the django-redis cache (``pip install "sophie-chat[redis]"``). Needed as
    soon as more than one server process serves the chat, so that every
    process sees every conversation and rate limits hold across them.
``DATABASE_URL``
    e.g. ``postgres://demo:secret@127.0.0.1:5432/demo``: PostgreSQL instead of
    SQLite (``pip install "sophie-chat[postgres]"``), with a connection pool.
``DJANGO_SECRET_KEY``, ``DJANGO_DEBUG``, ``DJANGO_ALLOWED_HOSTS``
    The usual; the defaults are for a laptop only.
"""

import os
from pathlib import Path
from urllib.parse import unquote, urlsplit

from sophie_chat.db import pool_options

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "demo-only-not-secret-change-me")
DEBUG = os.environ.get("DJANGO_DEBUG", "1").lower() in {"1", "true", "yes", "on"}
ALLOWED_HOSTS = os.environ.get("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]").split(",")

INSTALLED_APPS = [
    # First, so that `manage.py runserver` is daphne's: ASGI, WebSockets included.
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "sophie_chat",
    "demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "demo.urls"
ASGI_APPLICATION = "demo.asgi.application"

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
                "demo.views.site_text",
            ],
        },
    },
]

# A strict Content-Security-Policy (Django 6.0+), to show that the widget
# needs nothing inline: its script carries the nonce, its stylesheet is 'self'.
try:
    from django.utils.csp import CSP
except ImportError:  # Django 5.2 has no built-in CSP; the demo runs without one.
    CSP = None
if CSP is not None:
    MIDDLEWARE.insert(1, "django.middleware.csp.ContentSecurityPolicyMiddleware")
    TEMPLATES[0]["OPTIONS"]["context_processors"].append("django.template.context_processors.csp")
    SECURE_CSP = {
        "default-src": [CSP.SELF],
        "script-src": [CSP.SELF, CSP.NONCE],
        "style-src": [CSP.SELF],
        "img-src": [CSP.SELF, "data:"],
        # 'self' covers ws:// and wss:// on the page's own host.
        "connect-src": [CSP.SELF],
        "object-src": [CSP.NONE],
        "base-uri": [CSP.SELF],
        "form-action": [CSP.SELF],
        "frame-ancestors": [CSP.NONE],
    }

DATABASE_URL = os.environ.get("DATABASE_URL", "")
if DATABASE_URL:
    # PostgreSQL (pip install "sophie-chat[postgres]"), with a connection pool
    # per process, as docs/deployment.md recommends.
    _db = urlsplit(DATABASE_URL)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": _db.path.lstrip("/"),
            "USER": unquote(_db.username or ""),
            "PASSWORD": unquote(_db.password or ""),
            "HOST": _db.hostname or "",
            "PORT": str(_db.port or ""),
            "CONN_MAX_AGE": 0,
            "CONN_HEALTH_CHECKS": True,
            "OPTIONS": {"pool": pool_options(min_size=1, max_size=4, timeout=5)},
        }
    }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": BASE_DIR / "db.sqlite3",
        }
    }

REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    # Several processes: they share conversations through Redis pub/sub and
    # rate limits and cached answers through the Redis cache.
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL]},
        }
    }
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": {"CLIENT_CLASS": "django_redis.client.DefaultClient"},
        }
    }
else:
    # One process: everything in memory, nothing to install.
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

if os.environ.get("OPENAI_API_KEY"):
    LLM = {
        "BACKEND": "sophie_chat.llm.openai.OpenAIBackend",
        "OPTIONS": {
            "model": os.environ.get("OPENAI_MODEL", "gpt-4o-mini"),
            "api_key": os.environ["OPENAI_API_KEY"],
            "base_url": os.environ.get("OPENAI_BASE_URL") or None,
        },
    }
else:
    # No network, no key: answers straight from the knowledge base.
    LLM = {"BACKEND": "sophie_chat.llm.offline.OfflineBackend"}

# What Sophie can do on the site (demo/tools.py), and lead capture for quotes.
# Only a model calls tools: offline, none is listed.
TOOLS = (
    [
        "demo.tools.search_services",
        "demo.tools.my_bookings",
        "demo.tools.reschedule_booking",
        "demo.tools.cancel_booking",
        "sophie_chat.tools.leads.capture_lead",
    ]
    if os.environ.get("OPENAI_API_KEY")
    else []
)

# Casa Pronta's office hours, when the demo keeps them (DEMO_OFFICE_HOURS=1).
OFFICE_HOURS = {
    **{day: [("08:00", "12:00"), ("13:00", "18:00")] for day in ("mon", "tue", "wed", "thu")},
    "fri": [("08:00", "12:00"), ("13:00", "17:00")],
    "sat": [("09:00", "13:00")],
}

SOPHIE_CHAT = {
    "LLM": LLM,
    "ASSISTANT_NAME": "Sophie",
    # The demo's providers are the members of a group (demo/accounts.py).
    "USER_TYPE_RESOLVER": "demo.accounts.user_type",
    # The built-in providers, plus the client's upcoming bookings (demo/chat_context.py).
    "CONTEXT_PROVIDERS": [
        "sophie_chat.context.user_context",
        "sophie_chat.context.page_context",
        "sophie_chat.context.session_context",
        "demo.chat_context.upcoming_bookings",
    ],
    "TOOLS": TOOLS,
    # A quote request: what the service is, where, when, and how to reach the visitor.
    "LEADS": {
        "FIELDS": ["service", "neighbourhood", "preferred_date", "name", "phone", "email"],
        "REQUIRED": ["service", "neighbourhood", "name"],
    },
    # Estimated costs on the analytics dashboard (chat/analytics/), per 1M tokens.
    "MODEL_PRICES": {"gpt-4o-mini": {"input": 0.15, "output": 0.6}},
    # A person from the team takes over when asked (docs/handoff.md): Bia
    # (demo/accounts.py) answers in chat/inbox/. Always open,
    # unless DEMO_OFFICE_HOURS=1 gives the team Casa Pronta's office hours.
    "HANDOFF": {
        "ENABLED": True,
        "TIMEZONE": "America/Sao_Paulo",
        "HOURS": OFFICE_HOURS if os.environ.get("DEMO_OFFICE_HOURS") == "1" else {},
        "WAIT_TIMEOUT": 180,
    },
}

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "account"
LOGOUT_REDIRECT_URL = "home"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en"
LANGUAGES = [
    ("en", "English"),
    ("pt-br", "Português (Brasil)"),
]
TIME_ZONE = "America/Sao_Paulo"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"sophie_chat": {"handlers": ["console"], "level": "INFO"}},
}
