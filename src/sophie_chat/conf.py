"""Settings: the one place that reads ``settings.SOPHIE_CHAT``.

``DEFAULTS`` below is mirrored by ``docs/settings.md``. A host's
``SOPHIE_CHAT`` dict is merged over it recursively, so a partial dict such as
``{"RATE_LIMIT": {"OPTIONS": {"rate": "100/m"}}}`` keeps the default backend
and changes only its rate. The merged config is cached and forgotten when
Django's ``setting_changed`` signal fires (``override_settings`` in tests);
modules that build something from it forget that through their own
``setting_changed`` receiver. This module imports nothing of the app.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from functools import cache
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver

SETTING_NAME = "SOPHIE_CHAT"

DEFAULTS: dict[str, Any] = {
    # Pluggable parts: Django's BACKEND + OPTIONS shape.
    "LLM": {
        "BACKEND": "sophie_chat.llm.openai.OpenAIBackend",
        "OPTIONS": {},
    },
    "KNOWLEDGE": {
        "BACKEND": "sophie_chat.knowledge.database.DatabaseKnowledgeSource",
        "OPTIONS": {},
    },
    "RATE_LIMIT": {
        "BACKEND": "sophie_chat.ratelimit.cache.CacheRateLimiter",
        "OPTIONS": {"rate": "10/m", "burst": 3},
    },
    "RESPONSE_CACHE": {
        "ENABLED": True,
        "CACHE_ALIAS": "default",
        "TIMEOUT": 3600,
    },
    # When the limiter cannot count: refuse messages (False) or answer them unlimited (True).
    "RATE_LIMIT_FAIL_OPEN": False,
    # A shared cache holding "one turn at a time per session" across processes; None: per process.
    "TURN_LOCK_CACHE_ALIAS": "default",
    # The assistant.
    "ASSISTANT_NAME": "Sophie",
    "ASSISTANT_AVATAR_URL": None,
    "SYSTEM_PROMPT": None,
    # A Django template name (or a dict of them by locale) for the system prompt.
    "SYSTEM_PROMPT_TEMPLATE": None,
    "GREETING": None,
    # Conversations.
    "MAX_HISTORY_MESSAGES": 50,
    "SESSION_TIMEOUT_HOURS": 24,
    "MIN_MESSAGE_LENGTH": 1,
    "MAX_MESSAGE_LENGTH": 2000,
    "MAX_FEEDBACK_LENGTH": 1000,
    "MAX_CONTEXT_SIZE_BYTES": 10000,
    "KNOWLEDGE_RESULTS": 3,
    # Prompts and token budgets (sophie_chat.tokens, sophie_chat.quota).
    "MAX_PROMPT_TOKENS": 6000,
    "MAX_ANSWER_TOKENS": None,
    "TOKEN_COUNTER": "estimate",
    "DAILY_TOKEN_BUDGET_USER": None,
    "DAILY_TOKEN_BUDGET_IP": None,
    # Unanswered questions, for staff to see what the knowledge base is missing.
    "RECORD_UNANSWERED": True,
    "UNSURE_ANSWER_PATTERNS": None,
    "RESPONSE_TIMEOUT_SECONDS": 30,
    "FALLBACK_RESPONSES": True,
    "FALLBACK_MESSAGE": None,
    "ENABLE_TYPING_INDICATOR": True,
    "ENABLE_ANALYTICS": True,
    "ALLOW_ANONYMOUS": True,
    "CONTEXT_PROVIDERS": [
        "sophie_chat.context.user_context",
        "sophie_chat.context.page_context",
        "sophie_chat.context.session_context",
    ],
    "USER_TYPE_RESOLVER": "sophie_chat.context.default_user_type",
    # Connections.
    "MAX_CONNECTIONS_PER_PROCESS": 10000,
    "MAX_CONNECTIONS_PER_CLIENT": 20,
    "MAX_FRAME_BYTES": 65536,
    "TRUSTED_PROXIES": [],
    # Threads running Sophie's queries; None: 1 on SQLite, else 4 (each holds a connection).
    "DATABASE_THREADS": None,
    # Logging.
    "LOG_ALL_MESSAGES": False,
    # Retention.
    "RETENTION_DAYS": 90,
    # Operations: cost estimates, Prometheus metrics, deleting a user.
    # Prices per 1M tokens by model name, e.g. {"gpt-4o-mini": {"input": 0.15, "output": 0.6}}.
    "MODEL_PRICES": {},
    "COST_CURRENCY": "USD",
    "METRICS": {"ENABLED": True, "ENDPOINT": False, "TOKEN": None},
    # "delete" a deleted user's conversations, or "anonymize" them.
    "ON_USER_DELETE": "delete",
}

# Keys whose value is a BACKEND + OPTIONS dict.
BACKEND_SETTINGS = ("LLM", "KNOWLEDGE", "RATE_LIMIT")


def _merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            current = merged[key]
            # A new BACKEND starts from empty OPTIONS: the default backend's
            # options would be unknown options for another class.
            if (
                key in BACKEND_SETTINGS
                and "BACKEND" in value
                and value["BACKEND"] != current.get("BACKEND")
            ):
                current = {"BACKEND": value["BACKEND"], "OPTIONS": {}}
            merged[key] = _merge(current, value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


@cache
def get_config() -> dict[str, Any]:
    """The merged ``SOPHIE_CHAT`` settings. Treat the result as read-only."""
    user = getattr(settings, SETTING_NAME, None) or {}
    if not isinstance(user, Mapping):
        raise ImproperlyConfigured(f"{SETTING_NAME} must be a dict, not {type(user).__name__}.")
    return _merge(DEFAULTS, user)


def unknown_keys() -> list[str]:
    """Top-level keys in the host's ``SOPHIE_CHAT`` that sophie-chat does not know."""
    user = getattr(settings, SETTING_NAME, None) or {}
    if not isinstance(user, Mapping):
        return []
    return sorted(key for key in user if key not in DEFAULTS)


def get(name: str) -> Any:
    """One setting by name, e.g. ``conf.get("MAX_MESSAGE_LENGTH")``."""
    return get_config()[name]


@receiver(setting_changed)
def _forget(*, setting: str, **kwargs: Any) -> None:
    if setting == SETTING_NAME:
        get_config.cache_clear()
