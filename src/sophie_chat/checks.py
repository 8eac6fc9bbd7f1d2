"""System checks. IDs are stable; each is documented in ``docs/checks.md``."""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Mapping
from types import NoneType, UnionType
from typing import Any, Literal, Union, get_args, get_origin

from django.conf import settings
from django.core import checks
from django.template import TemplateDoesNotExist
from django.template.loader import get_template
from django.utils.module_loading import import_string

from sophie_chat import backends, conf, metrics, tokens
from sophie_chat.security import parse_origin
from sophie_chat.tools import registry as tool_registry


def _setting_error(message: str, hint: str, check_id: str) -> checks.Error:
    return checks.Error(message, hint=hint, id=f"sophie_chat.{check_id}")


@checks.register()
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    user = getattr(settings, conf.SETTING_NAME, None)
    if user is not None and not isinstance(user, Mapping):
        return [
            _setting_error(
                f"SOPHIE_CHAT must be a dict, not {type(user).__name__}.",
                "Set SOPHIE_CHAT = {...} in your settings, or remove it to use the defaults.",
                "E001",
            )
        ]
    errors: list[checks.CheckMessage] = []
    for key in conf.unknown_keys():
        errors.append(
            checks.Warning(
                f"SOPHIE_CHAT has an unknown key {key!r}.",
                hint="Check its spelling against the settings reference; unknown keys are ignored.",
                id="sophie_chat.W001",
            )
        )
    config = conf.get_config()
    # The checks after the types look into values of the right type only:
    # a wrong type is one E005, not an error for each use of the value.
    valid = set()
    for setting in conf.SETTINGS:
        if setting.type is conf.BACKEND:
            continue
        if _fits(setting.type, config[setting.name], setting):
            valid.add(setting.name)
        else:
            errors.append(_type_error(setting, config[setting.name]))
    for setting in conf.BACKEND_SETTINGS:
        errors.extend(_check_backend(setting))
    errors.extend(_check_lengths(config, valid))
    errors.extend(_check_response_cache(config, valid))
    errors.extend(_check_turn_lock(config, valid))
    errors.extend(_check_ip_budget(config, valid))
    errors.extend(_check_callables(config, valid))
    errors.extend(_check_operations(config, valid))
    errors.extend(_check_prompts(config, valid))
    errors.extend(_check_tools(config, valid))
    errors.extend(_check_handoff(config, valid))
    errors.extend(_check_inbox(config, valid))
    return errors


# The staff inbox (W028) ------------------------------------------------------------------


def _check_inbox(config: dict[str, Any], valid: set[str]) -> list[checks.CheckMessage]:
    """Agents' presence (docs/handoff.md, "Presence") lives in the default cache: with
    several processes (a channel layer that is not in memory) it must be shared."""
    if "HANDOFF" not in valid or not config["HANDOFF"]["ENABLED"]:
        return []
    layer = ((getattr(settings, "CHANNEL_LAYERS", None) or {}).get("default") or {}).get(
        "BACKEND", ""
    )
    cache = (settings.CACHES.get("default") or {}).get("BACKEND", "")
    local = cache.endswith(("locmem.LocMemCache", "dummy.DummyCache"))
    if layer and not layer.endswith("InMemoryChannelLayer") and local:
        return [
            checks.Warning(
                "The inbox keeps agents' presence in the default cache, which is local to "
                "each process while the channel layer serves several: agents on another "
                "process will look offline.",
                hint="Use a shared default cache (Redis, Memcached or the database), as "
                "docs/deployment.md shows.",
                id="sophie_chat.W028",
            )
        ]
    return []


# Handoff (E030 to E034, W025 to W027) ----------------------------------------------------

#: Below it, visitors hear that nobody is there before staff can notice them.
SHORT_WAIT_SECONDS = 30


def _check_handoff(config: dict[str, Any], valid: set[str]) -> list[checks.CheckMessage]:
    """``HANDOFF`` (docs/handoff.md): hours, time zone, holidays, the channel layer, NOTIFY.

    A value of the wrong type is E005's; these look inside values of the right type.
    """
    if "HANDOFF" not in valid:
        return []
    from sophie_chat import business_hours

    handoff = config["HANDOFF"]
    errors: list[checks.CheckMessage] = []
    hours = handoff["HOURS"]
    unknown = [day for day in hours if day not in business_hours.WEEKDAYS]
    if unknown:
        errors.append(
            _setting_error(
                f'SOPHIE_CHAT["HANDOFF"]["HOURS"] has keys that are not weekdays: '
                f"{', '.join(map(repr, unknown))}.",
                f"Use {', '.join(business_hours.WEEKDAYS)}.",
                "E030",
            )
        )
    bad_periods = [
        f"{day}: {period!r}"
        for day, periods in hours.items()
        for period in periods
        if not _is_period(period, business_hours.parse_time)
    ]
    if bad_periods:
        errors.append(
            _setting_error(
                f'SOPHIE_CHAT["HANDOFF"]["HOURS"] has periods that are not ("HH:MM", "HH:MM") '
                f"with the start before the end: {'; '.join(bad_periods)}.",
                'Write each period as ("09:00", "18:00"); split one that crosses midnight '
                'into ("22:00", "24:00") and ("00:00", "06:00") of the next day.',
                "E031",
            )
        )
    zone = handoff["TIMEZONE"]
    if zone is not None and not _is_time_zone(zone):
        errors.append(
            _setting_error(
                f'SOPHIE_CHAT["HANDOFF"]["TIMEZONE"] is not a known time zone: {zone!r}.',
                'Use an IANA name such as "America/Sao_Paulo", or None for TIME_ZONE.',
                "E032",
            )
        )
    bad_days = [day for day in handoff["HOLIDAYS"] if not _is_iso_date(day)]
    if bad_days:
        errors.append(
            _setting_error(
                f'SOPHIE_CHAT["HANDOFF"]["HOLIDAYS"] has entries that are not ISO dates: '
                f"{', '.join(map(repr, bad_days))}.",
                'Write dates as "2026-12-25".',
                "E033",
            )
        )
    if handoff["ENABLED"] and not (getattr(settings, "CHANNEL_LAYERS", None) or {}):
        errors.append(
            _setting_error(
                'SOPHIE_CHAT["HANDOFF"] is enabled but there is no channel layer: agents '
                "and visitors would never hear each other.",
                "Set CHANNEL_LAYERS (channels_redis in production), or turn HANDOFF off.",
                "E034",
            )
        )
    if handoff["ENABLED"] and handoff["WAIT_TIMEOUT"] < SHORT_WAIT_SECONDS:
        errors.append(
            checks.Warning(
                f'SOPHIE_CHAT["HANDOFF"]["WAIT_TIMEOUT"] is {handoff["WAIT_TIMEOUT"]} seconds: '
                "visitors will hear that nobody is available before staff can notice them.",
                hint=f"Give staff at least {SHORT_WAIT_SECONDS} seconds (the default is 300).",
                id="sophie_chat.W025",
            )
        )
    bad_addresses = [address for address in handoff["NOTIFY"] if not _is_email(address)]
    if bad_addresses:
        errors.append(
            checks.Warning(
                f'SOPHIE_CHAT["HANDOFF"]["NOTIFY"] has entries that are not e-mail addresses: '
                f"{', '.join(map(repr, bad_addresses))}; no e-mail goes to them.",
                hint='List the staff\'s addresses, e.g. ["support@example.com"].',
                id="sophie_chat.W026",
            )
        )
    if handoff["ENABLED"] and hours and not any(hours.values()):
        errors.append(
            checks.Warning(
                'SOPHIE_CHAT["HANDOFF"]["HOURS"] lists days but no opening period: every '
                "visitor asking for a person will hear that the team is away.",
                hint="Give the team's periods, or set HOURS to {} for always open.",
                id="sophie_chat.W027",
            )
        )
    return errors


def _is_period(period: Any, parse_time: Any) -> bool:
    if not isinstance(period, list | tuple) or len(period) != 2:
        return False
    try:
        return parse_time(period[0]) < parse_time(period[1])
    except ValueError:
        return False


def _is_time_zone(name: str) -> bool:
    import zoneinfo

    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _is_iso_date(value: str) -> bool:
    import datetime

    try:
        datetime.date.fromisoformat(value)
    except ValueError:
        return False
    return len(value) == 10


# Types (E005) ---------------------------------------------------------------------------


def _type_error(setting: conf.Setting, value: Any) -> checks.Error:
    example = f", e.g. {setting.example}" if setting.example else ""
    return _setting_error(
        f'SOPHIE_CHAT["{setting.name}"] must be {_describe(setting.type, setting)}, not {value!r}.',
        f'Fix SOPHIE_CHAT["{setting.name}"]{example}; its default is {setting.default!r}.',
        "E005",
    )


def _fits(type_: Any, value: Any, setting: conf.Setting) -> bool:
    """Whether ``value`` is of the type expression ``type_`` (see :class:`conf.Setting`)."""
    if type_ is Any:
        return True
    if type_ is NoneType:
        return value is None
    if type_ is bool:
        return isinstance(value, bool)
    if type_ in (int, float):
        number = int if type_ is int else int | float
        return (
            isinstance(value, number)
            and not isinstance(value, bool)
            and (setting.ge is None or value >= setting.ge)
            and (setting.gt is None or value > setting.gt)
        )
    if type_ is str:
        return isinstance(value, str) and (setting.blank or bool(value.strip()))
    if isinstance(type_, dict):
        return (
            isinstance(value, Mapping)
            and set(value) <= set(type_)
            and all(_fits(type_[key], item, setting) for key, item in value.items())
        )
    origin, args = get_origin(type_), get_args(type_)
    if origin in (Union, UnionType):
        return any(_fits(member, value, setting) for member in args)
    if origin is Literal:
        return any(type(value) is type(choice) and value == choice for choice in args)
    if origin is list:
        return isinstance(value, list | tuple) and all(
            _fits(args[0], item, setting) for item in value
        )
    if origin is dict:
        return isinstance(value, Mapping) and all(
            _fits(args[0], key, setting) and _fits(args[1], item, setting)
            for key, item in value.items()
        )
    raise TypeError(f"Setting {setting.name}: unsupported type {type_!r}.")


def _describe(type_: Any, setting: conf.Setting, *, plural: bool = False) -> str:
    """``type_`` in words, for a check message: "a whole number of 1 or more"."""
    if get_origin(type_) in (Union, UnionType):
        members = get_args(type_)
        words = " or ".join(
            _describe(member, setting, plural=plural)
            for member in members
            if member is not NoneType
        )
        return f"{words}, or None" if NoneType in members else words
    if type_ is bool:
        return "True or False"
    if type_ in (int, float):
        words = "whole number" if type_ is int else "number"
        if setting.ge is not None:
            words += f"{'s' if plural else ''} of {setting.ge:g} or more"
        elif setting.gt is not None:
            words += f"{'s' if plural else ''} greater than {setting.gt:g}"
        elif plural:
            words += "s"
        return words if plural else f"a {words}"
    if type_ is str:
        words = "texts" if plural else "text"
        return words if setting.blank else f"{words} (not blank)"
    if isinstance(type_, dict):
        keys = [f"{json.dumps(key)} ({_describe(item, setting)})" for key, item in type_.items()]
        listed = ", ".join(keys[:-1]) + f" and {keys[-1]}" if len(keys) > 1 else keys[0]
        return f"{'dicts' if plural else 'a dict'} with {listed}"
    origin, args = get_origin(type_), get_args(type_)
    if origin is Literal:
        return " or ".join(json.dumps(choice) for choice in args)
    if origin is list:
        return f"{'lists' if plural else 'a list'} of {_describe(args[0], setting, plural=True)}"
    if origin is dict:
        return f"{'dicts' if plural else 'a dict'} of {_describe(args[1], setting, plural=True)}"
    return repr(type_)


# Settings whose meaning reaches past their type -------------------------------------------


def _check_lengths(config: dict[str, Any], valid: set[str]) -> list[checks.CheckMessage]:
    low, high = config["MIN_MESSAGE_LENGTH"], config["MAX_MESSAGE_LENGTH"]
    if {"MIN_MESSAGE_LENGTH", "MAX_MESSAGE_LENGTH"} <= valid and low > high:
        return [
            _setting_error(
                f"MIN_MESSAGE_LENGTH ({low}) is greater than MAX_MESSAGE_LENGTH ({high}).",
                'Lower SOPHIE_CHAT["MIN_MESSAGE_LENGTH"] or raise '
                'SOPHIE_CHAT["MAX_MESSAGE_LENGTH"].',
                "E005",
            )
        ]
    return []


def _check_backend(setting: str) -> list[checks.CheckMessage]:
    hint_path = f'SOPHIE_CHAT["{setting}"]["BACKEND"]'
    try:
        cls = backends.handler.backend_class(setting)
    except backends.InvalidBackendError as exc:
        return [_setting_error(str(exc), f"Fix {hint_path}: a dotted path to a class.", "E002")]
    options = conf.get(setting).get("OPTIONS") or {}
    if not isinstance(options, dict):
        return [
            _setting_error(
                f'SOPHIE_CHAT["{setting}"]["OPTIONS"] must be a dict.',
                f'Fix SOPHIE_CHAT["{setting}"]["OPTIONS"].',
                "E003",
            )
        ]
    unknown = backends.unknown_options(cls, options)
    if unknown:
        accepted = [
            name
            for name, p in inspect.signature(cls).parameters.items()
            if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
        return [
            _setting_error(
                f'SOPHIE_CHAT["{setting}"]["OPTIONS"] has unknown option(s) '
                f"{', '.join(map(repr, unknown))} for {cls.__module__}.{cls.__qualname__}.",
                f"Its options are: {', '.join(accepted) or '(none)'}.",
                "E003",
            )
        ]
    try:
        instance = backends.handler.create(setting)
    except Exception as exc:
        return [
            _setting_error(
                f'SOPHIE_CHAT["{setting}"] could not be built: {exc}',
                f'Fix the value in SOPHIE_CHAT["{setting}"]["OPTIONS"].',
                "E004",
            )
        ]
    check = getattr(instance, "check", None)
    return list(check(setting)) if callable(check) else []


def _check_response_cache(config: dict[str, Any], valid: set[str]) -> list[checks.CheckMessage]:
    response_cache = config["RESPONSE_CACHE"]
    if "RESPONSE_CACHE" not in valid or not response_cache.get("ENABLED"):
        return []
    alias = response_cache.get("CACHE_ALIAS")
    if alias not in settings.CACHES:
        return [
            _setting_error(
                f"The response cache alias {alias!r} is not in CACHES.",
                'Add it to CACHES, or fix SOPHIE_CHAT["RESPONSE_CACHE"]["CACHE_ALIAS"].',
                "E006",
            )
        ]
    backend = settings.CACHES[alias].get("BACKEND", "")
    if not settings.DEBUG and backend == "django.core.cache.backends.locmem.LocMemCache":
        return [
            checks.Warning(
                f"The response cache uses {alias!r}, a local-memory cache: each server "
                "process keeps its own copy and restarts empty it.",
                hint='In production point SOPHIE_CHAT["RESPONSE_CACHE"]["CACHE_ALIAS"] at a '
                "shared cache such as django-redis.",
                id="sophie_chat.W011",
            )
        ]
    return []


def _check_ip_budget(config: dict[str, Any], valid: set[str]) -> list[checks.CheckMessage]:
    """W051: an IP budget whose answers each hold all that is left of it."""
    if "DAILY_TOKEN_BUDGET_IP" not in valid or "MAX_ANSWER_TOKENS" not in valid:
        return []
    if config["DAILY_TOKEN_BUDGET_IP"] is None or config["MAX_ANSWER_TOKENS"] is not None:
        return []
    return [
        checks.Warning(
            'SOPHIE_CHAT["DAILY_TOKEN_BUDGET_IP"] is set without MAX_ANSWER_TOKENS: while '
            "an answer is written it holds all that is left of its address's budget, so "
            "other visitors behind the same address are refused until it ends.",
            hint='Set SOPHIE_CHAT["MAX_ANSWER_TOKENS"] well below the IP budget, e.g. 800.',
            id="sophie_chat.W051",
        )
    ]


def _check_turn_lock(config: dict[str, Any], valid: set[str]) -> list[checks.CheckMessage]:
    alias = config["TURN_LOCK_CACHE_ALIAS"]
    if "TURN_LOCK_CACHE_ALIAS" not in valid or alias is None or alias in settings.CACHES:
        return []
    return [
        _setting_error(
            f'SOPHIE_CHAT["TURN_LOCK_CACHE_ALIAS"] is {alias!r}, which is not a cache in CACHES.',
            "Name a cache of CACHES (a shared one, such as django-redis, when several "
            'processes serve the chat), or set SOPHIE_CHAT["TURN_LOCK_CACHE_ALIAS"] = None.',
            "E016",
        )
    ]


def _check_callables(config: dict[str, Any], valid: set[str]) -> list[checks.CheckMessage]:
    named: list[tuple[str, str]] = []
    if "CONTEXT_PROVIDERS" in valid:
        named.extend(("CONTEXT_PROVIDERS", path) for path in config["CONTEXT_PROVIDERS"])
    if "USER_TYPE_RESOLVER" in valid:
        named.append(("USER_TYPE_RESOLVER", config["USER_TYPE_RESOLVER"]))
    errors: list[checks.CheckMessage] = []
    for name, path in named:
        problem = _unusable_function(path)
        if problem:
            errors.append(
                _setting_error(
                    f'SOPHIE_CHAT["{name}"]: {path!r} cannot be used: {problem}',
                    f'Fix SOPHIE_CHAT["{name}"]: dotted paths to functions.',
                    "E007",
                )
            )
    return errors


def _unusable_function(path: str) -> str | None:
    """Why the dotted path ``path`` does not name a function, or None when it does."""
    try:
        func = import_string(path)
    except ImportError as exc:
        return str(exc)
    return None if callable(func) else f"{path!r} is not callable"


def _check_operations(config: dict[str, Any], valid: set[str]) -> list[checks.CheckMessage]:
    """W014 (the metrics endpoint without prometheus_client) and W015 (retention)."""
    errors: list[checks.CheckMessage] = []
    if "METRICS" in valid and config["METRICS"].get("ENDPOINT") and not metrics.available():
        errors.append(
            checks.Warning(
                'SOPHIE_CHAT["METRICS"]["ENDPOINT"] is on but prometheus_client is not '
                "installed: chat/metrics/ answers 404.",
                hint='pip install "sophie-chat[prometheus]", or turn the endpoint off.',
                id="sophie_chat.W014",
            )
        )
    days, hours = config["RETENTION_DAYS"], config["SESSION_TIMEOUT_HOURS"]
    if (
        {"RETENTION_DAYS", "SESSION_TIMEOUT_HOURS"} <= valid
        and days is not None
        and hours > days * 24
    ):
        errors.append(
            checks.Warning(
                f"RETENTION_DAYS ({days}) is shorter than SESSION_TIMEOUT_HOURS ({hours} h): "
                "cleanup_old_chat_sessions may delete conversations visitors could still resume.",
                hint='Raise SOPHIE_CHAT["RETENTION_DAYS"] or lower '
                'SOPHIE_CHAT["SESSION_TIMEOUT_HOURS"].',
                id="sophie_chat.W015",
            )
        )
    return errors


def _check_tools(config: dict[str, Any], valid: set[str]) -> list[checks.CheckMessage]:
    """E020 to E024, W020 to W022: the entries of TOOLS (:mod:`sophie_chat.tools.registry`)."""
    if "TOOLS" not in valid or not config["TOOLS"]:
        return []
    try:
        supports_tools: bool | None = bool(backends.handler.backend_class("LLM").supports_tools)
    except backends.InvalidBackendError:
        supports_tools = None  # E002 reports the backend itself
    return tool_registry.problems(list(config["TOOLS"]), backend_supports_tools=supports_tools)


@checks.register()
def check_database(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """W030: PostgreSQL opening a connection for every unit of Sophie's work."""
    alias = _sophie_database()
    if alias is None:
        return []
    database = settings.DATABASES[alias]
    options = database.get("OPTIONS") or {}
    if "postgresql" not in database.get("ENGINE", ""):
        return []
    if database.get("CONN_MAX_AGE", 0) == 0 and not options.get("pool"):
        return [
            checks.Warning(
                f"DATABASES[{alias!r}] connects to PostgreSQL anew for every unit of "
                "database work (CONN_MAX_AGE is 0 and there is no connection pool): each "
                "chat message pays for several connection set-ups.",
                hint=f'Give DATABASES[{alias!r}]["OPTIONS"] a "pool" made by '
                "sophie_chat.db.pool_options(...), with CONN_HEALTH_CHECKS = True, as the "
                "deployment docs show, or set CONN_MAX_AGE to None or a number of seconds.",
                id="sophie_chat.W030",
            )
        ]
    return []


@checks.register(deploy=True)
def check_sqlite_journal(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """W031 (``--deploy``): SQLite in its default rollback journal mode.

    Only the settings are read: ``PRAGMA journal_mode=WAL`` also persists in the
    database file, which this check does not open; silence it then.
    """
    alias = _sophie_database()
    if alias is None:
        return []
    database = settings.DATABASES[alias]
    if "sqlite3" not in database.get("ENGINE", ""):
        return []
    init_command = str((database.get("OPTIONS") or {}).get("init_command", ""))
    if re.search(r"journal_mode\s*=\s*'?wal", init_command, re.IGNORECASE):
        return []
    return [
        checks.Warning(
            f"DATABASES[{alias!r}] is SQLite in its default journal mode: every stored "
            "message waits for the disk twice and blocks readers, so a server taking "
            "concurrent chats answers more slowly.",
            hint=f'Add "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;" '
            f'to DATABASES[{alias!r}]["OPTIONS"], or use PostgreSQL (see the deployment docs).',
            id="sophie_chat.W031",
        )
    ]


@checks.register(deploy=True)
def check_sqlite_connections(
    app_configs: Any = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """W032 (``--deploy``): SQLite with Django's default ``CONN_MAX_AGE`` of 0."""
    alias = _sophie_database()
    if alias is None:
        return []
    database = settings.DATABASES[alias]
    if "sqlite3" not in database.get("ENGINE", "") or database.get("CONN_MAX_AGE", 0) != 0:
        return []
    return [
        checks.Warning(
            f"DATABASES[{alias!r}] is SQLite with CONN_MAX_AGE = 0: a connection is opened "
            "and set up for every unit of chat work (several per message), and the server "
            "answers about half as many messages a second.",
            hint=f'Set DATABASES[{alias!r}]["CONN_MAX_AGE"] = None to keep it '
            "(see the quickstart and docs/performance.md).",
            id="sophie_chat.W032",
        )
    ]


def _sophie_database() -> str | None:
    """The alias Sophie's conversations are written to, None if it is not configured."""
    from django.db import router

    from sophie_chat.models import ChatMessage

    alias = router.db_for_write(ChatMessage)
    return alias if alias in settings.DATABASES else None


@checks.register()
def check_channels(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    errors: list[checks.CheckMessage] = []
    if "channels" not in settings.INSTALLED_APPS and "daphne" not in settings.INSTALLED_APPS:
        errors.append(
            _setting_error(
                '"channels" is not in INSTALLED_APPS; the chat needs Django Channels.',
                'Add "channels" to INSTALLED_APPS and set ASGI_APPLICATION.',
                "E008",
            )
        )
    if settings.DEBUG:
        return errors
    layers = getattr(settings, "CHANNEL_LAYERS", None) or {}
    backend = layers.get("default", {}).get("BACKEND", "")
    if not layers or backend == "channels.layers.InMemoryChannelLayer":
        errors.append(
            checks.Warning(
                "The channel layer is in memory (or missing): tabs of one conversation "
                "connected to different server processes will not see each other's messages.",
                hint="In production set CHANNEL_LAYERS to channels_redis "
                "(pip install 'sophie-chat[redis]').",
                id="sophie_chat.W010",
            )
        )
    return errors


def _check_prompts(config: dict[str, Any], valid: set[str]) -> list[checks.CheckMessage]:
    """SYSTEM_PROMPT_TEMPLATE, UNSURE_ANSWER_PATTERNS (E005), TOKEN_COUNTER (E007, W016),
    the SYSTEM_PROMPT's way of declining (W040)."""
    errors: list[checks.CheckMessage] = []
    template = config["SYSTEM_PROMPT_TEMPLATE"]
    names = list(template.values()) if isinstance(template, Mapping) else [template]
    for name in names if "SYSTEM_PROMPT_TEMPLATE" in valid and template is not None else []:
        problem = None
        try:
            get_template(name)
        except TemplateDoesNotExist:
            problem = f"names a template that does not exist ({name!r})"
        except Exception as exc:  # a syntax error in the template
            problem = f"names a template that cannot be loaded ({name!r}: {exc})"
        if problem:
            errors.append(
                _setting_error(
                    f'SOPHIE_CHAT["SYSTEM_PROMPT_TEMPLATE"] {problem}.',
                    "Fix the name (found by your TEMPLATES loaders), or set it to None.",
                    "E005",
                )
            )
    patterns = config["UNSURE_ANSWER_PATTERNS"]
    if "UNSURE_ANSWER_PATTERNS" in valid and patterns is not None:
        try:
            for pattern in patterns:
                re.compile(pattern)
        except re.error as exc:
            errors.append(
                _setting_error(
                    f'SOPHIE_CHAT["UNSURE_ANSWER_PATTERNS"]: {pattern!r} is not a regular '
                    f"expression ({exc}).",
                    'Fix SOPHIE_CHAT["UNSURE_ANSWER_PATTERNS"], or set it to None for the '
                    "built-in phrases.",
                    "E005",
                )
            )
    if "TOKEN_COUNTER" in valid:
        errors.extend(_check_token_counter(config["TOKEN_COUNTER"]))
    if {"SYSTEM_PROMPT", "UNSURE_ANSWER_PATTERNS"} <= valid and not errors:
        errors.extend(_check_decline_phrase(config["SYSTEM_PROMPT"]))
    return errors


def _check_decline_phrase(prompt: str | Mapping[str, str] | None) -> list[checks.CheckMessage]:
    """W040: a SYSTEM_PROMPT that never names a way of declining the patterns recognise."""
    from sophie_chat.unanswered import says_unsure

    texts = prompt.items() if isinstance(prompt, Mapping) else [("", prompt or "")]
    silent = [locale for locale, text in texts if text and not says_unsure(text)]
    if not silent:
        return []
    which = f" ({', '.join(map(repr, silent))})" if isinstance(prompt, Mapping) else ""
    return [
        checks.Warning(
            f"SYSTEM_PROMPT{which} does not ask the model to decline in words "
            "UNSURE_ANSWER_PATTERNS recognise: answers that say the assistant does not know "
            "will not be marked declined nor recorded as unanswered.",
            hint='Ask the model to begin such an answer with a fixed phrase ("I don\'t know", '
            '"Não sei"), or add the phrase your prompt asks for to UNSURE_ANSWER_PATTERNS.',
            id="sophie_chat.W040",
        )
    ]


def _check_token_counter(counter: str) -> list[checks.CheckMessage]:
    if counter == "estimate":
        return []
    if counter == "tiktoken" or counter.startswith("tiktoken:"):
        encoding = counter.partition(":")[2] or tokens.DEFAULT_ENCODING
        if tokens.local_tiktoken_encoding(encoding) is not None:
            return []
        return [
            checks.Warning(
                f"TOKEN_COUNTER is {counter!r}, but tiktoken or its {encoding!r} encoding "
                "is not available locally: token counts use the built-in estimate.",
                hint='pip install "sophie-chat[tiktoken]" and put the encoding file in '
                "TIKTOKEN_CACHE_DIR (it is never downloaded at run time).",
                id="sophie_chat.W016",
            )
        ]
    problem = _unusable_function(counter)
    if problem is None:
        return []
    return [
        _setting_error(
            f'SOPHIE_CHAT["TOKEN_COUNTER"]: {counter!r} cannot be used: {problem}',
            'Use "estimate", "tiktoken", "tiktoken:<encoding>" or a dotted path to a '
            "function (text) -> int.",
            "E007",
        )
    ]


# Middleware that serves static files from inside Django (WhiteNoise, its ASGI fork).
@checks.register()
def check_leads(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """E025, E026: ``LEADS``, what the built-in ``capture_lead`` tool asks for (docs/leads.md).

    A value of the wrong type is E005's; these look at the names inside.
    """
    from sophie_chat.tools import leads

    try:
        config = conf.get("LEADS")
        fields, required, notify = config["FIELDS"], config["REQUIRED"], config["NOTIFY"]
        names = [*fields, *required, *notify]
    except Exception:
        return []
    if not all(isinstance(name, str) for name in names):
        return []
    errors: list[checks.CheckMessage] = []
    unknown = [name for name in [*fields, *required] if name not in leads.LEAD_FIELDS]
    if unknown:
        errors.append(
            _setting_error(
                f'SOPHIE_CHAT["LEADS"] names fields capture_lead does not know: '
                f"{', '.join(map(repr, unknown))}.",
                f"Choose among {', '.join(leads.LEAD_FIELDS)}.",
                "E025",
            )
        )
    not_asked = [name for name in required if name in leads.LEAD_FIELDS and name not in fields]
    if not_asked:
        errors.append(
            _setting_error(
                f'SOPHIE_CHAT["LEADS"]["REQUIRED"] has fields that are not in "FIELDS": '
                f"{', '.join(map(repr, not_asked))}.",
                'Add them to "FIELDS", or remove them from "REQUIRED".',
                "E025",
            )
        )
    if not any(name in fields for name in leads.CONTACT_FIELDS):
        errors.append(
            _setting_error(
                'SOPHIE_CHAT["LEADS"]["FIELDS"] has neither "phone" nor "email": '
                "a lead would give the staff no way to reach the visitor.",
                'Add "phone" or "email" (or both) to "FIELDS".',
                "E025",
            )
        )
    bad = [address for address in notify if not _is_email(address)]
    if bad:
        errors.append(
            _setting_error(
                f'SOPHIE_CHAT["LEADS"]["NOTIFY"] has entries that are not e-mail addresses: '
                f"{', '.join(map(repr, bad))}.",
                'List the staff\'s addresses, e.g. ["sales@example.com"].',
                "E026",
            )
        )
    return errors


def _is_email(value: str) -> bool:
    from django.core.exceptions import ValidationError
    from django.core.validators import validate_email

    try:
        validate_email(value)
    except ValidationError:
        return False
    return True


_STATIC_MIDDLEWARE = ("whitenoise.", "servestatic.")


@checks.register()
def check_static_files(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """W017: nothing would serve the widget's script and stylesheet.

    An ASGI server (uvicorn, daphne) serves no static files of its own; only
    ``runserver`` with daphne wraps the application in a static files handler.
    The widget's files are reachable when the ASGI application serves them
    (``ASGIStaticFilesHandler``, WhiteNoise) or when ``STATIC_ROOT`` is set for
    ``collectstatic`` and a web server.
    """
    if "django.contrib.staticfiles" not in settings.INSTALLED_APPS:
        return [
            checks.Warning(
                '"django.contrib.staticfiles" is not in INSTALLED_APPS: the chat widget\'s '
                "script and stylesheet (sophie_chat/widget.js, widget.css) can be neither "
                "found nor collected, so pages show no widget.",
                hint='Add "django.contrib.staticfiles" to INSTALLED_APPS.',
                id="sophie_chat.W017",
            )
        ]
    if getattr(settings, "STATIC_ROOT", None):
        return []
    if any(str(path).startswith(_STATIC_MIDDLEWARE) for path in settings.MIDDLEWARE):
        return []
    application = _asgi_application()
    if application is None or _serves_static_files(application):
        return []
    return [
        checks.Warning(
            f"Nothing serves the chat widget's script and stylesheet "
            f"({settings.STATIC_URL}sophie_chat/widget.js) under an ASGI server: "
            f"{settings.ASGI_APPLICATION} does not serve static files, and STATIC_ROOT is not "
            "set, so they cannot be collected for a web server. Only runserver with daphne "
            "serves them on its own.",
            hint="In development wrap the HTTP application of your asgi.py in "
            "django.contrib.staticfiles.handlers.ASGIStaticFilesHandler, as the quickstart "
            "shows. In production set STATIC_ROOT, run collectstatic and serve it with "
            "WhiteNoise or your web server (see the deployment docs).",
            id="sophie_chat.W017",
        )
    ]


def _asgi_application() -> Any:
    """The ``ASGI_APPLICATION`` object, or None when it is not set or cannot be imported
    (the server reports that itself, with its traceback)."""
    path = getattr(settings, "ASGI_APPLICATION", None)
    if not isinstance(path, str) or not path:
        return None
    try:
        return import_string(path)
    except Exception:
        return None


def _serves_static_files(application: Any, depth: int = 0) -> bool:
    """Whether HTTP requests to ``application`` pass through a static files handler.

    Follows Channels' ``ProtocolTypeRouter`` to its ``"http"`` application and
    middleware wrappers to what they wrap (``application``, ``app``, ``inner``).
    """
    from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

    if isinstance(application, ASGIStaticFilesHandler):
        return True
    if type(application).__module__.startswith(_STATIC_MIDDLEWARE):
        return True
    if depth > 20:
        return False
    mapping = getattr(application, "application_mapping", None)
    if isinstance(mapping, Mapping):
        return "http" in mapping and _serves_static_files(mapping["http"], depth + 1)
    for name in ("application", "app", "inner"):
        inner = getattr(application, name, None)
        if inner is not None and inner is not application:
            return _serves_static_files(inner, depth + 1)
    return False


# Security (docs/security.md) -------------------------------------------------------------


@checks.register()
def check_allowed_origins(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """E050: an ``ALLOWED_ORIGINS`` entry that is not a ``scheme://host[:port]`` origin."""
    allowed = conf.get("ALLOWED_ORIGINS")
    if not isinstance(allowed, list | tuple):
        return []  # None, or a wrong type (E005)
    return [
        checks.Error(
            f'SOPHIE_CHAT["ALLOWED_ORIGINS"] has {entry!r}, which is not an origin.',
            hint='Write each origin as scheme, host and optional port, with no path: '
            '"https://www.example.com" or "http://localhost:8000".',
            id="sophie_chat.E050",
        )
        for entry in allowed
        if not isinstance(entry, str) or parse_origin(entry) is None
    ]


@checks.register(checks.Tags.security, deploy=True)
def check_origins_deploy(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """W050 (deploy): ``ALLOWED_ORIGINS`` is not set, so origins are compared by host only."""
    if conf.get("ALLOWED_ORIGINS") is not None:
        return []
    return [
        checks.Warning(
            'SOPHIE_CHAT["ALLOWED_ORIGINS"] is not set: the chat accepts WebSockets from a '
            "page of any scheme and port of your ALLOWED_HOSTS (Channels' "
            "AllowedHostsOriginValidator compares host names only).",
            hint='Set ALLOWED_ORIGINS to the origins of your pages, e.g. '
            '["https://www.example.com"].',
            id="sophie_chat.W050",
        )
    ]
