"""Loading of the pluggable parts (``LLM``, ``KNOWLEDGE``, ``RATE_LIMIT``).

Modelled on Django's ``STORAGES``/``CACHES`` handlers: each part is named in
settings by ``BACKEND`` (a dotted path) and ``OPTIONS`` (keyword-only
arguments of the class). :data:`handler` builds each one on first use,
keeps it per setting key, and forgets them all when ``setting_changed``
reports a change of the settings they are built from.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.utils.module_loading import import_string

from sophie_chat import conf

if TYPE_CHECKING:
    from sophie_chat.knowledge.base import BaseKnowledgeSource
    from sophie_chat.llm.base import BaseLLMBackend
    from sophie_chat.ratelimit.base import BaseRateLimiter


class InvalidBackendError(ImproperlyConfigured):
    """A ``BACKEND`` path that cannot be imported, or ``OPTIONS`` it does not take."""


def unknown_options(cls: type, options: dict[str, Any]) -> list[str]:
    """The option names that ``cls`` does not accept as keyword arguments."""
    params = inspect.signature(cls).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return []
    accepted = {p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}
    return sorted(set(options) - accepted)


class BackendHandler:
    """The configured backends by setting key: ``handler["LLM"]``.

    Built lazily, one instance per key and process; forgotten (and built
    again on next use) when ``SOPHIE_CHAT`` or a setting the backends read
    (``CACHES``, ``CHANNEL_LAYERS``, ``DEBUG``) changes.
    """

    #: Django settings that the built backends depend on, besides SOPHIE_CHAT.
    depends_on = frozenset({conf.SETTING_NAME, "CACHES", "CHANNEL_LAYERS", "DEBUG"})

    def __init__(self) -> None:
        self._backends: dict[str, Any] = {}
        setting_changed.connect(self._setting_changed)

    def __getitem__(self, setting: str) -> Any:
        try:
            return self._backends[setting]
        except KeyError:
            backend = self._backends[setting] = self.create(setting)
            return backend

    def backend_class(self, setting: str) -> type:
        """Import the class named by ``SOPHIE_CHAT[setting]["BACKEND"]``."""
        if setting not in conf.BACKEND_SETTINGS:
            raise InvalidBackendError(f"{setting!r} is not a backend setting of SOPHIE_CHAT.")
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
            raise InvalidBackendError(
                f'SOPHIE_CHAT["{setting}"]["BACKEND"] = {path!r} is not a class.'
            )
        return cls

    def create(self, setting: str) -> Any:
        """A fresh instance of the backend configured under ``setting`` (not kept)."""
        cls = self.backend_class(setting)
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

    def reset(self) -> None:
        """Forget every built backend: each is built again on next use."""
        self._backends.clear()

    def _setting_changed(self, *, setting: str, **kwargs: Any) -> None:
        if setting in self.depends_on:
            self.reset()


#: The process's backends.
handler = BackendHandler()


def reset() -> None:
    """Forget every built backend (for tests and scripts that swap what backends use)."""
    handler.reset()


def llm() -> BaseLLMBackend:
    """The configured language model backend."""
    return handler["LLM"]


def knowledge() -> BaseKnowledgeSource:
    """The configured knowledge source."""
    return handler["KNOWLEDGE"]


def rate_limiter() -> BaseRateLimiter:
    """The configured rate limiter."""
    return handler["RATE_LIMIT"]


def session_start_limiter() -> BaseRateLimiter | None:
    """The ``RATE_LIMIT`` backend counting at ``SESSION_START_RATE`` (None: not limited).

    A limiter class without a ``rate`` option counts session starts at its own rate.
    """
    rate = conf.get("SESSION_START_RATE")
    if rate is None:
        return None
    key = f"RATE_LIMIT@{rate}"
    if key not in handler._backends:
        cls = handler.backend_class("RATE_LIMIT")
        options = dict(conf.get("RATE_LIMIT").get("OPTIONS") or {})
        if not unknown_options(cls, {"rate": rate, "burst": None}):
            options.update(rate=rate, burst=None)
            handler._backends[key] = cls(**options)
        else:
            handler._backends[key] = rate_limiter()
    return handler._backends[key]
