"""Settings: the one place that reads ``settings.SOPHIE_CHAT``.

``SETTINGS`` below describes every key: its type (checked by
:mod:`sophie_chat.checks` as ``sophie_chat.E005``) and its default. A host's
``SOPHIE_CHAT`` dict is merged over the defaults recursively, so a partial
dict such as ``{"RATE_LIMIT": {"OPTIONS": {"rate": "100/m"}}}`` keeps the
default backend and changes only its rate. The merged config is cached and
forgotten when Django's ``setting_changed`` signal fires (``override_settings``
in tests); modules that build something from it forget that through their
own ``setting_changed`` receiver. This module imports nothing of the app.

To add a setting: add a ``Setting(name, type, default)`` line to ``SETTINGS``;
add a ``### `NAME``` section with ``Default: `...``` to ``docs/settings.md``
(``tests/test_conf.py`` checks the two agree); read it with ``conf.get(NAME)``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from types import NoneType, UnionType
from typing import Any, Literal, Union, get_args, get_origin

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver

SETTING_NAME = "SOPHIE_CHAT"

#: The type of a pluggable part: ``BACKEND``, the dotted path of a class, and
#: ``OPTIONS``, its keyword-only arguments (checked by E002 to E004, not E005).
BACKEND = {"BACKEND": str, "OPTIONS": dict[str, Any]}
#: The type of a model's prices in ``MODEL_PRICES``, per 1M tokens.
PRICE = {"input": float, "output": float}


@dataclass(frozen=True)
class Setting:
    """One key of ``SOPHIE_CHAT``: its name, type and default.

    ``type`` is a type expression: ``bool``, ``int``, ``float`` (any
    number), ``str``, ``Literal[...]``, ``list[T]`` (a list or a tuple),
    ``dict[str, T]``, a dict of key to type (a dict with those keys, each
    optional, no others), :data:`BACKEND`, or a union of them such as
    ``int | None`` (``None`` allowed). ``ge``/``gt``: every number in the
    value must be at least/more than it. ``blank=False``: text must not be
    empty. ``example`` is shown in the check's hint.
    """

    name: str
    type: Any
    default: Any
    ge: float | None = None
    gt: float | None = None
    blank: bool = True
    example: str | None = None

    @property
    def allows_none(self) -> bool:
        """Whether ``None`` is a valid value (it turns the feature off or picks a default)."""
        return NoneType in _union_members(self.type)


SETTINGS: tuple[Setting, ...] = (
    # Pluggable parts: Django's BACKEND + OPTIONS shape.
    Setting("LLM", BACKEND, {"BACKEND": "sophie_chat.llm.openai.OpenAIBackend", "OPTIONS": {}}),
    Setting(
        "KNOWLEDGE",
        BACKEND,
        {"BACKEND": "sophie_chat.knowledge.database.DatabaseKnowledgeSource", "OPTIONS": {}},
    ),
    Setting(
        "RATE_LIMIT",
        BACKEND,
        {
            "BACKEND": "sophie_chat.ratelimit.cache.CacheRateLimiter",
            "OPTIONS": {"rate": "10/m", "burst": 3},
        },
    ),
    Setting(
        "RESPONSE_CACHE",
        {"ENABLED": bool, "CACHE_ALIAS": str, "TIMEOUT": float | None},
        {"ENABLED": True, "CACHE_ALIAS": "default", "TIMEOUT": 3600},
        ge=0,
    ),
    # When the limiter cannot count: refuse messages (False) or answer them unlimited (True).
    Setting("RATE_LIMIT_FAIL_OPEN", bool, False),
    # A shared cache holding "one turn at a time per session" across processes; None: per process.
    Setting("TURN_LOCK_CACHE_ALIAS", str | None, "default"),
    # The assistant.
    Setting("ASSISTANT_NAME", str, "Sophie", blank=False),
    Setting("ASSISTANT_AVATAR_URL", str | None, None),
    # Text, or texts by locale; None: the built-in prompt.
    Setting("SYSTEM_PROMPT", str | dict[str, str] | None, None),
    # A Django template name (or a dict of them by locale) for the system prompt.
    Setting("SYSTEM_PROMPT_TEMPLATE", str | dict[str, str] | None, None),
    Setting("GREETING", str | None, None),
    # Conversations.
    Setting("MAX_HISTORY_MESSAGES", int, 50, ge=1),
    Setting("SESSION_TIMEOUT_HOURS", int, 24, ge=1),
    Setting("MIN_MESSAGE_LENGTH", int, 1, ge=1),
    Setting("MAX_MESSAGE_LENGTH", int, 2000, ge=1),
    Setting("MAX_FEEDBACK_LENGTH", int, 1000, ge=1),
    Setting("MAX_CONTEXT_SIZE_BYTES", int, 10000, ge=1),
    Setting("KNOWLEDGE_RESULTS", int, 3, ge=0),
    # Prompts and token budgets (sophie_chat.tokens, sophie_chat.quota); None: no cap, no budget.
    Setting("MAX_PROMPT_TOKENS", int, 6000, ge=1),
    Setting("MAX_ANSWER_TOKENS", int | None, None, ge=1),
    # "estimate", "tiktoken", "tiktoken:<encoding>" or a dotted path to a function.
    Setting("TOKEN_COUNTER", str, "estimate"),
    Setting("DAILY_TOKEN_BUDGET_USER", int | None, None, ge=1),
    Setting("DAILY_TOKEN_BUDGET_IP", int | None, None, ge=1),
    # Unanswered questions, for staff to see what the knowledge base is missing.
    Setting("RECORD_UNANSWERED", bool, True),
    # Regular expressions; None: the built-in phrases.
    Setting("UNSURE_ANSWER_PATTERNS", list[str] | None, None),
    Setting("RESPONSE_TIMEOUT_SECONDS", float, 30, gt=0),
    # How long an answer goes on after its tab left, for a tab that resumes (0: stop at once).
    Setting("STREAM_GRACE_SECONDS", float, 30, ge=0),
    Setting("FALLBACK_RESPONSES", bool, True),
    Setting("FALLBACK_MESSAGE", str | None, None),
    # What the offline backend says when the knowledge base has no answer:
    # text, or texts by locale; None: a built-in, translated text.
    Setting("NO_ANSWER_MESSAGE", str | dict[str, str] | None, None),
    Setting("ENABLE_TYPING_INDICATOR", bool, True),
    Setting("ENABLE_ANALYTICS", bool, True),
    Setting("ALLOW_ANONYMOUS", bool, True),
    # Dotted paths to functions.
    Setting(
        "CONTEXT_PROVIDERS",
        list[str],
        [
            "sophie_chat.context.user_context",
            "sophie_chat.context.page_context",
            "sophie_chat.context.session_context",
        ],
    ),
    Setting("USER_TYPE_RESOLVER", str, "sophie_chat.context.default_user_type"),
    # Tools (docs/tools.md): dotted paths to @tool functions, and their limits.
    Setting("TOOLS", list[str], [], example='["myapp.tools.my_bookings"]'),
    Setting("TOOL_ROUNDS", int, 5, ge=1),
    Setting("TOOL_TIMEOUT", float, 10, gt=0),
    Setting("CONFIRM_TIMEOUT", float, 120, gt=0),
    # A whole turn with tools, not counting the time the visitor takes to confirm.
    Setting("TURN_TIMEOUT", float, 120, gt=0),
    # Connections.
    Setting("MAX_CONNECTIONS_PER_PROCESS", int, 10000, ge=1),
    Setting("MAX_CONNECTIONS_PER_CLIENT", int, 20, ge=1),
    Setting("MAX_FRAME_BYTES", int, 65536, ge=1),
    Setting("TRUSTED_PROXIES", list[str], [], example='["127.0.0.1", "10.0.0.0/8"]'),
    # Hardening (docs/security.md): what one connection or visitor may ask for.
    Setting("MAX_QUEUED_MESSAGES", int, 10, ge=1),
    Setting("SESSION_START_RATE", str | None, "20/m", example='"20/m"'),
    Setting("MAX_ANSWER_CHARS", int, 20000, ge=1),
    # Origins ("https://example.com:8443") allowed to open the chat; None: the site's own hosts.
    Setting("ALLOWED_ORIGINS", list[str] | None, None, example='["https://www.example.com"]'),
    Setting("RESUME_TOKEN_MAX_AGE_HOURS", int | None, 168, ge=1),
    # Threads running Sophie's queries; None: 1 on SQLite, else 4 (each holds a connection).
    Setting("DATABASE_THREADS", int | None, None, ge=1),
    # Logging.
    Setting("LOG_ALL_MESSAGES", bool, False),
    # Retention; None: keep conversations forever.
    Setting("RETENTION_DAYS", int | None, 90, ge=1),
    # Operations: cost estimates, Prometheus metrics, deleting a user.
    # Prices per 1M tokens by model name.
    Setting(
        "MODEL_PRICES",
        dict[str, PRICE],
        {},
        ge=0,
        example='{"gpt-4o-mini": {"input": 0.15, "output": 0.6}}',
    ),
    Setting("COST_CURRENCY", str, "USD"),
    Setting(
        "METRICS",
        {"ENABLED": bool, "ENDPOINT": bool, "TOKEN": str | None},
        {"ENABLED": True, "ENDPOINT": False, "TOKEN": None},
    ),
    # chat/health/ tells everyone its details (versions, connections, model), not only staff.
    Setting("HEALTH_DETAILS", bool, False),
    # What deleting a Django user does to their conversations.
    Setting("ON_USER_DELETE", Literal["delete", "anonymize"], "delete"),
    # Lead capture (docs/leads.md): what capture_lead asks for, and whom it e-mails.
    Setting(
        "LEADS",
        {"FIELDS": list[str], "REQUIRED": list[str], "NOTIFY": list[str]},
        {
            "FIELDS": ["service", "neighbourhood", "preferred_date", "name", "phone", "email"],
            "REQUIRED": ["service", "name"],
            "NOTIFY": [],
        },
        example='{"FIELDS": ["service", "name", "phone"], "NOTIFY": ["sales@example.com"]}',
    ),
    # Handoff to a person (docs/handoff.md): business hours, waiting, whom it e-mails.
    Setting(
        "HANDOFF",
        {
            "ENABLED": bool,
            "TIMEZONE": str | None,
            "HOURS": dict[str, list[list[str]]],
            "HOLIDAYS": list[str],
            "WAIT_TIMEOUT": float,
            "NOTIFY": list[str],
            "AGENT_IDLE": float,
        },
        {
            "ENABLED": False,
            "TIMEZONE": None,
            "HOURS": {},
            "HOLIDAYS": [],
            "WAIT_TIMEOUT": 300,
            "NOTIFY": [],
            "AGENT_IDLE": 300,
        },
        gt=0,
        example='{"ENABLED": True, "HOURS": {"mon": [("09:00", "18:00")]}}',
    ),
)

#: Each setting's default, by name (the description above, as a plain dict).
DEFAULTS: dict[str, Any] = {setting.name: setting.default for setting in SETTINGS}

#: Keys whose value is a BACKEND + OPTIONS dict.
BACKEND_SETTINGS: tuple[str, ...] = tuple(s.name for s in SETTINGS if s.type is BACKEND)

_BY_NAME: dict[str, Setting] = {setting.name: setting for setting in SETTINGS}


def setting(name: str) -> Setting:
    """The description of one setting (``KeyError`` for an unknown name)."""
    return _BY_NAME[name]


def _union_members(type_: Any) -> tuple[Any, ...]:
    if get_origin(type_) in (Union, UnionType):
        return get_args(type_)
    return (type_,)


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
    return sorted(key for key in user if key not in _BY_NAME)


def get(name: str) -> Any:
    """One setting by name, e.g. ``conf.get("MAX_MESSAGE_LENGTH")``."""
    return get_config()[name]


@receiver(setting_changed)
def _forget(*, setting: str, **kwargs: Any) -> None:
    if setting == SETTING_NAME:
        get_config.cache_clear()
