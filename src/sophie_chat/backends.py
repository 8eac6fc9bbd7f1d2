"""Loading of the pluggable parts (``LLM``, ``KNOWLEDGE``, ``RATE_LIMIT``).

Modelled on Django's ``CACHES``/``STORAGES`` handlers: each part is named in
settings by ``BACKEND`` (a dotted path) and ``OPTIONS`` (keyword-only
arguments of the class). Instances are built lazily, cached per setting and
forgotten on ``setting_changed``.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from sophie_chat import conf

if TYPE_CHECKING:
    from sophie_chat.knowledge.base import BaseKnowledgeSource
    from sophie_chat.llm.base import BaseLLMBackend
    from sophie_chat.ratelimit.base import BaseRateLimiter


class InvalidBackendError(ImproperlyConfigured):
    """A ``BACKEND`` path that cannot be imported, or ``OPTIONS`` it does not take."""


_instances: dict[str, Any] = {}


def reset() -> None:
    """Forget every built backend (called on ``setting_changed``)."""
    _instances.clear()


def backend_class(setting: str) -> type:
    """Import the class named by ``SOPHIE_CHAT[setting]["BACKEND"]``."""
    spec = conf.get(setting)
    if not isinstance(spec, dict) or not isinstance(spec.get("BACKEND"), str):
        raise InvalidBackendError(
            f'SOPHIE_CHAT["{setting}"] must be a dict with a "BACKEND" dotted path.'
        )
    path = spec["BACKEND"]
    try:
        cls = import_string(path)
    except ImportError as exc:
        raise InvalidBackendError(
            f'SOPHIE_CHAT["{setting}"]["BACKEND"] = {path!r} could not be imported: {exc}'
        ) from exc
    if not inspect.isclass(cls):
        raise InvalidBackendError(f'SOPHIE_CHAT["{setting}"]["BACKEND"] = {path!r} is not a class.')
    return cls


def unknown_options(cls: type, options: dict[str, Any]) -> list[str]:
    """The option names that ``cls`` does not accept as keyword arguments."""
    params = inspect.signature(cls).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return []
    accepted = {p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}
    return sorted(set(options) - accepted)


def build(setting: str) -> Any:
    """Build a fresh instance of the backend configured under ``setting``."""
    cls = backend_class(setting)
    options = conf.get(setting).get("OPTIONS") or {}
    if not isinstance(options, dict):
        raise InvalidBackendError(f'SOPHIE_CHAT["{setting}"]["OPTIONS"] must be a dict.')
    unknown = unknown_options(cls, options)
    if unknown:
        raise InvalidBackendError(
            f'SOPHIE_CHAT["{setting}"]["OPTIONS"] has unknown option(s) '
            f"{', '.join(map(repr, unknown))} for {cls.__module__}.{cls.__qualname__}."
        )
    try:
        return cls(**options)
    except TypeError as exc:
        raise InvalidBackendError(f'SOPHIE_CHAT["{setting}"]["OPTIONS"]: {exc}') from exc


def _get(setting: str) -> Any:
    try:
        return _instances[setting]
    except KeyError:
        instance = _instances[setting] = build(setting)
        return instance


def llm() -> BaseLLMBackend:
    """The configured language model backend."""
    return _get("LLM")


def knowledge() -> BaseKnowledgeSource:
    """The configured knowledge source."""
    return _get("KNOWLEDGE")


def rate_limiter() -> BaseRateLimiter:
    """The configured rate limiter."""
    return _get("RATE_LIMIT")
