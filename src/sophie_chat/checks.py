"""System checks. IDs are stable; each is documented in ``docs/checks.md``."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.core import checks
from django.utils.module_loading import import_string

from sophie_chat import backends, conf

# Positive whole numbers, and whether 0 is allowed.
_INT_SETTINGS = {
    "MAX_HISTORY_MESSAGES": False,
    "SESSION_TIMEOUT_HOURS": False,
    "MIN_MESSAGE_LENGTH": False,
    "MAX_MESSAGE_LENGTH": False,
    "MAX_FEEDBACK_LENGTH": False,
    "MAX_CONTEXT_SIZE_BYTES": False,
    "KNOWLEDGE_RESULTS": True,
    "MAX_CONNECTIONS_PER_PROCESS": False,
    "MAX_CONNECTIONS_PER_CLIENT": False,
    "MAX_FRAME_BYTES": False,
    "RETENTION_DAYS": False,
    "MAX_PROMPT_TOKENS": False,
    "MAX_ANSWER_TOKENS": False,
    "DAILY_TOKEN_BUDGET_USER": False,
    "DAILY_TOKEN_BUDGET_IP": False,
    "DATABASE_THREADS": False,
}
# None turns the feature off (keep conversations forever; no cap; no budget).
_NONE_ALLOWED = {
    "RETENTION_DAYS",
    "MAX_ANSWER_TOKENS",
    "DAILY_TOKEN_BUDGET_USER",
    "DAILY_TOKEN_BUDGET_IP",
    "DATABASE_THREADS",
}
_BOOL_SETTINGS = (
    "FALLBACK_RESPONSES",
    "ENABLE_TYPING_INDICATOR",
    "ENABLE_ANALYTICS",
    "ALLOW_ANONYMOUS",
    "LOG_ALL_MESSAGES",
    "RECORD_UNANSWERED",
    "RATE_LIMIT_FAIL_OPEN",
)
_OPTIONAL_TEXT_SETTINGS = ("ASSISTANT_AVATAR_URL", "FALLBACK_MESSAGE", "GREETING")


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
    errors.extend(_check_scalars())
    for setting in conf.BACKEND_SETTINGS:
        errors.extend(_check_backend(setting))
    errors.extend(_check_response_cache())
    errors.extend(_check_turn_lock())
    errors.extend(_check_callables())
    errors.extend(_check_operations())
    errors.extend(_check_prompts())
    return errors


def _check_scalars() -> list[checks.CheckMessage]:
    config = conf.get_config()
    errors: list[checks.CheckMessage] = []
    for name, zero_ok in _INT_SETTINGS.items():
        value = config[name]
        if value is None and name in _NONE_ALLOWED:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < (0 if zero_ok else 1):
            errors.append(
                _setting_error(
                    f'SOPHIE_CHAT["{name}"] must be a whole number '
                    f"{'of 0 or more' if zero_ok else 'of 1 or more'}, not {value!r}.",
                    f'Fix SOPHIE_CHAT["{name}"]; its default is {conf.DEFAULTS[name]!r}.',
                    "E005",
                )
            )
    for name in _BOOL_SETTINGS:
        if not isinstance(config[name], bool):
            errors.append(
                _setting_error(
                    f'SOPHIE_CHAT["{name}"] must be True or False, not {config[name]!r}.',
                    f'Fix SOPHIE_CHAT["{name}"].',
                    "E005",
                )
            )
    text_errors = [
        name
        for name in _OPTIONAL_TEXT_SETTINGS
        if config[name] is not None and not isinstance(config[name], str)
    ]
    if not isinstance(config["ASSISTANT_NAME"], str) or not config["ASSISTANT_NAME"].strip():
        text_errors.insert(0, "ASSISTANT_NAME")
    errors.extend(
        _setting_error(
            f'SOPHIE_CHAT["{name}"] must be text, not {config[name]!r}.',
            f'Fix SOPHIE_CHAT["{name}"].',
            "E005",
        )
        for name in text_errors
    )
    timeout = config["RESPONSE_TIMEOUT_SECONDS"]
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        errors.append(
            _setting_error(
                'SOPHIE_CHAT["RESPONSE_TIMEOUT_SECONDS"] must be a positive number, '
                f"not {timeout!r}.",
                'Fix SOPHIE_CHAT["RESPONSE_TIMEOUT_SECONDS"]; its default is 30.',
                "E005",
            )
        )
    low, high = config["MIN_MESSAGE_LENGTH"], config["MAX_MESSAGE_LENGTH"]
    if isinstance(low, int) and isinstance(high, int) and low > high:
        errors.append(
            _setting_error(
                f"MIN_MESSAGE_LENGTH ({low}) is greater than MAX_MESSAGE_LENGTH ({high}).",
                'Lower SOPHIE_CHAT["MIN_MESSAGE_LENGTH"] or raise '
                'SOPHIE_CHAT["MAX_MESSAGE_LENGTH"].',
                "E005",
            )
        )
    prompt = config["SYSTEM_PROMPT"]
    if prompt is not None and not isinstance(prompt, str | Mapping):
        errors.append(
            _setting_error(
                'SOPHIE_CHAT["SYSTEM_PROMPT"] must be text or a dict of texts by locale, '
                f"not {prompt!r}.",
                'Fix SOPHIE_CHAT["SYSTEM_PROMPT"], or set it to None for the built-in prompt.',
                "E005",
            )
        )
    proxies = config["TRUSTED_PROXIES"]
    if not isinstance(proxies, list | tuple) or not all(isinstance(p, str) for p in proxies):
        errors.append(
            _setting_error(
                'SOPHIE_CHAT["TRUSTED_PROXIES"] must be a list of IP addresses or networks, '
                f"not {proxies!r}.",
                'Fix SOPHIE_CHAT["TRUSTED_PROXIES"], e.g. ["127.0.0.1", "10.0.0.0/8"].',
                "E005",
            )
        )
    return errors


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


def _check_response_cache() -> list[checks.CheckMessage]:
    config = conf.get("RESPONSE_CACHE")
    if not isinstance(config, Mapping) or not config.get("ENABLED"):
        return []
    alias = config.get("CACHE_ALIAS")
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


def _check_turn_lock() -> list[checks.CheckMessage]:
    alias = conf.get("TURN_LOCK_CACHE_ALIAS")
    if alias is None or (isinstance(alias, str) and alias in settings.CACHES):
        return []
    return [
        _setting_error(
            f'SOPHIE_CHAT["TURN_LOCK_CACHE_ALIAS"] is {alias!r}, which is not a cache in CACHES.',
            'Name a cache of CACHES (a shared one, such as django-redis, when several '
            'processes serve the chat), or set SOPHIE_CHAT["TURN_LOCK_CACHE_ALIAS"] = None.',
            "E016",
        )
    ]


def _check_callables() -> list[checks.CheckMessage]:
    errors: list[checks.CheckMessage] = []
    config = conf.get_config()
    providers = config["CONTEXT_PROVIDERS"]
    paths = list(providers) if isinstance(providers, list | tuple) else [providers]
    named = [("CONTEXT_PROVIDERS", path) for path in paths]
    named.append(("USER_TYPE_RESOLVER", config["USER_TYPE_RESOLVER"]))
    for name, path in named:
        try:
            if not isinstance(path, str):
                raise ImportError(f"{path!r} is not a dotted path")
            func = import_string(path)
            if not callable(func):
                raise ImportError(f"{path!r} is not callable")
        except ImportError as exc:
            errors.append(
                _setting_error(
                    f'SOPHIE_CHAT["{name}"]: {path!r} cannot be used: {exc}',
                    f'Fix SOPHIE_CHAT["{name}"]: dotted paths to functions.',
                    "E007",
                )
            )
    return errors



def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value >= 0


def _check_operations() -> list[checks.CheckMessage]:
    """MODEL_PRICES, COST_CURRENCY, METRICS and ON_USER_DELETE (E005), W014, W015."""
    config = conf.get_config()
    errors: list[checks.CheckMessage] = []
    prices = config["MODEL_PRICES"]
    if not isinstance(prices, Mapping) or not all(
        isinstance(name, str)
        and isinstance(price, Mapping)
        and set(price) <= {"input", "output"}
        and all(_is_number(v) for v in price.values())
        for name, price in prices.items()
    ):
        errors.append(
            _setting_error(
                'SOPHIE_CHAT["MODEL_PRICES"] must map model names to '
                f'{{"input": number, "output": number}} (per 1M tokens), not {prices!r}.',
                'Fix SOPHIE_CHAT["MODEL_PRICES"], e.g. '
                '{"gpt-4o-mini": {"input": 0.15, "output": 0.6}}.',
                "E005",
            )
        )
    if not isinstance(config["COST_CURRENCY"], str):
        errors.append(
            _setting_error(
                f'SOPHIE_CHAT["COST_CURRENCY"] must be text, not {config["COST_CURRENCY"]!r}.',
                'Fix SOPHIE_CHAT["COST_CURRENCY"], e.g. "USD".',
                "E005",
            )
        )
    if config["ON_USER_DELETE"] not in ("delete", "anonymize"):
        errors.append(
            _setting_error(
                'SOPHIE_CHAT["ON_USER_DELETE"] must be "delete" or "anonymize", '
                f'not {config["ON_USER_DELETE"]!r}.',
                'Fix SOPHIE_CHAT["ON_USER_DELETE"]; its default is "delete".',
                "E005",
            )
        )
    metrics_config = config["METRICS"]
    valid_metrics = (
        isinstance(metrics_config, Mapping)
        and set(metrics_config) <= {"ENABLED", "ENDPOINT", "TOKEN"}
        and isinstance(metrics_config.get("ENABLED", True), bool)
        and isinstance(metrics_config.get("ENDPOINT", False), bool)
        and (metrics_config.get("TOKEN") is None or isinstance(metrics_config.get("TOKEN"), str))
    )
    if not valid_metrics:
        errors.append(
            _setting_error(
                'SOPHIE_CHAT["METRICS"] must be a dict with ENABLED and ENDPOINT (True or '
                f"False) and TOKEN (text or None), not {metrics_config!r}.",
                'Fix SOPHIE_CHAT["METRICS"]; see the settings reference.',
                "E005",
            )
        )
    elif metrics_config.get("ENDPOINT"):
        from sophie_chat import metrics

        if not metrics.available():
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
        isinstance(days, int)
        and isinstance(hours, int)
        and not isinstance(days, bool)
        and days >= 1
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


def _check_prompts() -> list[checks.CheckMessage]:
    """SYSTEM_PROMPT_TEMPLATE, UNSURE_ANSWER_PATTERNS (E005), TOKEN_COUNTER (E007, W016)."""
    import re

    from django.template import TemplateDoesNotExist
    from django.template.loader import get_template

    from sophie_chat import tokens

    config = conf.get_config()
    errors: list[checks.CheckMessage] = []
    template = config["SYSTEM_PROMPT_TEMPLATE"]
    names = (
        list(template.values())
        if isinstance(template, Mapping)
        else [template]
        if template is not None
        else []
    )
    for name in names:
        problem = None
        if not isinstance(name, str) or not name:
            problem = "must be a template name or a dict of them by locale"
        else:
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
    if patterns is not None:
        valid = isinstance(patterns, list | tuple) and all(isinstance(p, str) for p in patterns)
        if valid:
            try:
                for pattern in patterns:
                    re.compile(pattern)
            except re.error:
                valid = False
        if not valid:
            errors.append(
                _setting_error(
                    'SOPHIE_CHAT["UNSURE_ANSWER_PATTERNS"] must be a list of regular '
                    f"expressions, not {patterns!r}.",
                    'Fix SOPHIE_CHAT["UNSURE_ANSWER_PATTERNS"], or set it to None for the '
                    "built-in phrases.",
                    "E005",
                )
            )
    counter = config["TOKEN_COUNTER"]
    if not isinstance(counter, str) or not counter:
        counter = repr(counter)
    if counter == "tiktoken" or counter.startswith("tiktoken:"):
        encoding = counter.partition(":")[2] or tokens.DEFAULT_ENCODING
        if tokens.local_tiktoken_encoding(encoding) is None:
            errors.append(
                checks.Warning(
                    f"TOKEN_COUNTER is {counter!r}, but tiktoken or its {encoding!r} encoding "
                    "is not available locally: token counts use the built-in estimate.",
                    hint='pip install "sophie-chat[tiktoken]" and put the encoding file in '
                    "TIKTOKEN_CACHE_DIR (it is never downloaded at run time).",
                    id="sophie_chat.W016",
                )
            )
    elif counter != "estimate":
        try:
            func = import_string(counter)
            if not callable(func):
                raise ImportError(f"{counter!r} is not callable")
        except ImportError as exc:
            errors.append(
                _setting_error(
                    f'SOPHIE_CHAT["TOKEN_COUNTER"]: {counter!r} cannot be used: {exc}',
                    'Use "estimate", "tiktoken", "tiktoken:<encoding>" or a dotted path to a '
                    "function (text) -> int.",
                    "E007",
                )
            )
    return errors
