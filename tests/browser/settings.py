"""The demo's own settings (example_project/demo/settings.py), on a test database.

The browser tests serve the demo as ``make demo`` does, each server process
on its own copy of a migrated SQLite file named by
``SOPHIE_BROWSER_DATABASE``; ``OPENAI_API_KEY`` and ``OPENAI_BASE_URL`` point
it at the fake OpenAI server when a test needs to script the model.
``SOPHIE_BROWSER_RATE`` and ``SOPHIE_BROWSER_MAX_CONNECTIONS_PER_CLIENT``
tighten the limits for the tests of what happens at them;
``SOPHIE_BROWSER_LIMITER_REDIS_URL`` puts the limiter on a Redis server;
``SOPHIE_BROWSER_CONFIRM_TIMEOUT`` shortens ``CONFIRM_TIMEOUT``;
``SOPHIE_BROWSER_HANDOFF_CLOSED`` puts the team out of hours;
``SOPHIE_BROWSER_AGENT_IDLE`` shortens ``HANDOFF["AGENT_IDLE"]``.
"""

import os

from demo.settings import *  # noqa: F403
from demo.settings import SOPHIE_CHAT

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ["SOPHIE_BROWSER_DATABASE"],
    }
}

# The fixtures read the open connections from chat/health/.
# Every test starts its conversations from 127.0.0.1.
SOPHIE_CHAT = {**SOPHIE_CHAT, "HEALTH_DETAILS": True, "SESSION_START_RATE": "1000/m"}

if os.environ.get("SOPHIE_BROWSER_RATE"):
    SOPHIE_CHAT = {
        **SOPHIE_CHAT,
        "RATE_LIMIT": {"OPTIONS": {"rate": os.environ["SOPHIE_BROWSER_RATE"], "burst": 0}},
    }

# The limiter on a Redis server the test starts and stops (what a visitor
# sees while the limiter's Redis is down).
if os.environ.get("SOPHIE_BROWSER_LIMITER_REDIS_URL"):
    SOPHIE_CHAT = {
        **SOPHIE_CHAT,
        "RATE_LIMIT": {
            "BACKEND": "sophie_chat.ratelimit.redis.RedisRateLimiter",
            "OPTIONS": {
                "url": os.environ["SOPHIE_BROWSER_LIMITER_REDIS_URL"],
                "rate": os.environ.get("SOPHIE_BROWSER_RATE", "1000/m"),
                "socket_timeout": 0.5,
            },
        },
    }

if os.environ.get("SOPHIE_BROWSER_MAX_CONNECTIONS_PER_CLIENT"):
    SOPHIE_CHAT = {
        **SOPHIE_CHAT,
        "MAX_CONNECTIONS_PER_CLIENT": int(os.environ["SOPHIE_BROWSER_MAX_CONNECTIONS_PER_CLIENT"]),
    }

# A confirmation lapses sooner, for the test of what the visitor sees then.
if os.environ.get("SOPHIE_BROWSER_CONFIRM_TIMEOUT"):
    SOPHIE_CHAT = {
        **SOPHIE_CHAT,
        "CONFIRM_TIMEOUT": float(os.environ["SOPHIE_BROWSER_CONFIRM_TIMEOUT"]),
    }

# The offline backend streams word by word with a pause a person can see;
# shorter here so the tests wait less (the stream is still a stream).
if SOPHIE_CHAT["LLM"]["BACKEND"] == "sophie_chat.llm.offline.OfflineBackend":
    SOPHIE_CHAT = {**SOPHIE_CHAT, "LLM": {**SOPHIE_CHAT["LLM"], "OPTIONS": {"delay": 0.004}}}

# Catalogs searched before the package's own, e.g. to render screenshots with
# translations not yet compiled into it (os.pathsep-separated folders).
if os.environ.get("SOPHIE_BROWSER_LOCALE_PATHS"):
    LOCALE_PATHS = os.environ["SOPHIE_BROWSER_LOCALE_PATHS"].split(os.pathsep)

# The team is out today and tomorrow (holidays), back the day after at 09:00: what a
# visitor asking for a person out of hours sees, and what the inbox gets.
if os.environ.get("SOPHIE_BROWSER_HANDOFF_CLOSED"):
    import datetime as _dt

    _today = _dt.datetime.now(_dt.UTC).date()
    SOPHIE_CHAT = {
        **SOPHIE_CHAT,
        "HANDOFF": {
            **SOPHIE_CHAT.get("HANDOFF", {}),
            "ENABLED": True,
            "TIMEZONE": "UTC",
            "HOURS": {
                day: [("09:00", "18:00")]
                for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
            },
            "HOLIDAYS": [(_today + _dt.timedelta(days=n)).isoformat() for n in (0, 1)],
        },
    }

# Agents count as away sooner, for the test of presence in the inbox.
if os.environ.get("SOPHIE_BROWSER_AGENT_IDLE"):
    SOPHIE_CHAT = {
        **SOPHIE_CHAT,
        "HANDOFF": {
            **SOPHIE_CHAT.get("HANDOFF", {}),
            "AGENT_IDLE": float(os.environ["SOPHIE_BROWSER_AGENT_IDLE"]),
        },
    }
