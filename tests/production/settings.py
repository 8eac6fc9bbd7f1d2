"""Settings of the server processes of the production-topology tests.

The test project (``tests.settings``) configured with the production
settings of docs/deployment.md (see :mod:`tests.production.recipe`), plus
what the fixtures steer through the environment:

``REDIS_URL``, ``REDIS_CACHE_URL``, ``DATABASE_URL``
    read by the docs' settings block.
``SOPHIE_TOPOLOGY_PREFIX``
    prefixes every Redis key, so runs sharing a Redis database never meet.
``SOPHIE_TOPOLOGY_RATE``
    the message rate per visitor (default ``"1000/m"``, no burst limit).
``SOPHIE_E2E_OPENAI_BASE_URL``, ``SOPHIE_E2E_OPENAI_API_KEY``
    the fake OpenAI server.
``SOPHIE_TOPOLOGY_HANDOFF``
    ``"1"``: handoff to a person on (docs/handoff.md).
"""

import os

from tests.production.recipe import production_settings
from tests.settings import *  # noqa: F403
from tests.support.settings import server_logging

_recipe = production_settings()
_prefix = os.environ["SOPHIE_TOPOLOGY_PREFIX"]

DATABASES = _recipe["DATABASES"]
CHANNEL_LAYERS = _recipe["CHANNEL_LAYERS"]
CHANNEL_LAYERS["default"]["CONFIG"]["prefix"] = f"{_prefix}:asgi"
CACHES = _recipe["CACHES"]
for _cache in CACHES.values():
    _cache["KEY_PREFIX"] = f"{_prefix}:{_cache.get('KEY_PREFIX', '')}"

SOPHIE_CHAT = _recipe["SOPHIE_CHAT"]
SOPHIE_CHAT["RATE_LIMIT"]["OPTIONS"].update(
    rate=os.environ.get("SOPHIE_TOPOLOGY_RATE", "1000/m"), burst=None, key_prefix=f"{_prefix}:rl"
)
SOPHIE_CHAT.update(
    LLM={
        "BACKEND": "sophie_chat.llm.openai.OpenAIBackend",
        "OPTIONS": {
            "model": "gpt-4o-mini",
            "api_key": os.environ.get("SOPHIE_E2E_OPENAI_API_KEY", "sk-e2e"),
            "base_url": os.environ["SOPHIE_E2E_OPENAI_BASE_URL"],
            "max_retries": 0,
            "timeout": 5,
        },
    },
    RESPONSE_TIMEOUT_SECONDS=5,
    # Offered only to conversations started on its test page (see the tool).
    TOOLS=["tests.support.tools.leave_note"],
    # Every test starts its conversations from 127.0.0.1.
    SESSION_START_RATE="1000/m",
)
if os.environ.get("SOPHIE_TOPOLOGY_HANDOFF") == "1":
    SOPHIE_CHAT["HANDOFF"] = {"ENABLED": True, "WAIT_TIMEOUT": 300}

# The server's stderr is collected by the fixtures and shown when a test fails.
LOGGING = server_logging("INFO")
