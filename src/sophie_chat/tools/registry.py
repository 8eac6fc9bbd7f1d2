"""The tools of ``SOPHIE_CHAT["TOOLS"]``, loaded once, and their system checks.

:func:`tools` imports the dotted paths on first use and keeps them by name
until the settings change. :func:`offered` is what a visitor may use;
:func:`problems` is what the system checks report (``sophie_chat.E020`` to
``E024``, ``W020`` to ``W022``).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from django.apps import apps
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.module_loading import import_string

from sophie_chat import backends, conf
from sophie_chat.tools.base import NAME_PATTERN, Tool, ToolContext


class InvalidToolError(ImproperlyConfigured):
    """An entry of ``TOOLS`` that is not a usable tool (the checks say which)."""


#: The built-in tool offered while ``HANDOFF["ENABLED"]`` is on (docs/handoff.md).
HANDOFF_TOOL = "sophie_chat.handoff.tools.request_handoff"


def paths() -> list[str]:
    """``TOOLS``, and the handoff tool while handoff is on."""
    listed = list(conf.get("TOOLS"))
    if conf.get("HANDOFF")["ENABLED"] and HANDOFF_TOOL not in listed:
        listed.append(HANDOFF_TOOL)
    return listed


@cache
def tools() -> dict[str, Tool]:
    """The configured tools by name, in the order of ``TOOLS``.

    Raises :class:`InvalidToolError` for an entry the checks report as an error.
    """
    loaded: dict[str, Tool] = {}
    for path in paths():
        found = _load(path)
        if isinstance(found, str):
            raise InvalidToolError(found)
        if found.schema_error:
            raise InvalidToolError(f"Tool {path!r}: {found.schema_error}")
        if found.name in loaded:
            raise InvalidToolError(f"Two tools are named {found.name!r}.")
        loaded[found.name] = found
    return loaded


def get(name: str) -> Tool | None:
    """The configured tool called ``name``, or None."""
    return tools().get(name)


def enabled() -> bool:
    """Whether tools are on: ``TOOLS`` lists some (or handoff is on) and the ``LLM`` backend
    calls tools."""
    if not paths():
        return False
    try:
        return bool(backends.handler.backend_class("LLM").supports_tools)
    except backends.InvalidBackendError:
        return False  # sophie_chat.E002 says why


async def offered(context: ToolContext) -> list[Tool]:
    """The tools ``context``'s visitor may use, in the order of ``TOOLS``."""
    return [found for found in tools().values() if await found.allows(context)]


@receiver(setting_changed)
def _forget(*, setting: str, **kwargs: Any) -> None:
    if setting == conf.SETTING_NAME:
        tools.cache_clear()


def _load(path: str) -> Tool | str:
    """The tool at ``path``, or why there is none."""
    try:
        found = import_string(path)
    except ImportError as exc:
        return f'SOPHIE_CHAT["TOOLS"] entry {path!r} cannot be imported: {exc}.'
    if not isinstance(found, Tool):
        return (
            f'SOPHIE_CHAT["TOOLS"] entry {path!r} is not a tool '
            f"(a {type(found).__name__}, not decorated with @tool)."
        )
    return found


# Checks ---------------------------------------------------------------------------------


def problems(paths: list[str], *, backend_supports_tools: bool | None) -> list[checks.CheckMessage]:
    """The check messages about ``paths`` (the value of ``TOOLS``)."""
    messages: list[checks.CheckMessage] = []
    names: dict[str, str] = {}
    for path in paths:
        found = _load(path)
        if isinstance(found, str):
            messages.append(
                _error(
                    found,
                    "Decorate the function with @sophie_chat.tools.tool and give its dotted "
                    "path, e.g. 'myapp.tools.my_bookings'.",
                    "E020",
                )
            )
            continue
        if not NAME_PATTERN.match(found.name):
            messages.append(
                _error(
                    f"Tool {path!r} is named {found.name!r}; a tool's name has 1 to 64 "
                    "letters, digits, '_' or '-'.",
                    "Rename the function or pass @tool(name=...).",
                    "E021",
                )
            )
        elif found.name in names:
            messages.append(
                _error(
                    f"Tools {names[found.name]!r} and {path!r} are both named {found.name!r}.",
                    "Give one of them another name with @tool(name=...).",
                    "E021",
                )
            )
        names.setdefault(found.name, path)
        if found.permission is not None and not permission_exists(found.permission):
            messages.append(
                _error(
                    f"Tool {path!r} requires the permission {found.permission!r}, "
                    "which no installed model defines.",
                    "Name a permission as 'app_label.codename', e.g. 'bookings.change_booking'.",
                    "E022",
                )
            )
        if found.schema_error:
            messages.append(
                _error(
                    f"Tool {path!r} has arguments pydantic cannot describe: {found.schema_error}",
                    "Annotate each argument with a type pydantic supports (int, str, "
                    "datetime.date, Literal[...], a pydantic model...) and use no *args/**kwargs.",
                    "E023",
                )
            )
        else:
            messages.extend(_check_options(path, found))
        messages.extend(_check_advice(path, found))
    if paths and backend_supports_tools is False:
        messages.append(
            checks.Warning(
                'SOPHIE_CHAT["TOOLS"] lists tools, but the LLM backend cannot call tools: '
                "none will be offered.",
                hint="Use a backend with supports_tools, e.g. "
                '"sophie_chat.llm.openai.OpenAIBackend".',
                id="sophie_chat.W020",
            )
        )
    return messages


def _check_options(path: str, found: Tool) -> list[checks.CheckMessage]:
    """E024: ``allowed`` not callable, ``summary`` naming an argument the tool lacks."""
    messages: list[checks.CheckMessage] = []
    if found.allowed is not None and not callable(found.allowed):
        messages.append(
            _error(
                f"Tool {path!r}: allowed={found.allowed!r} is not callable.",
                "Pass a function taking the ToolContext and returning True or False.",
                "E024",
            )
        )
    unknown = sorted(found.summary_fields() - set(found.argument_names))
    if unknown:
        messages.append(
            _error(
                f"Tool {path!r}: its summary names {', '.join(unknown)}, "
                "which is not one of its arguments.",
                f"Use only its arguments in braces: {', '.join(found.argument_names) or 'none'}.",
                "E024",
            )
        )
    return messages


def _check_advice(path: str, found: Tool) -> list[checks.CheckMessage]:
    """W021: no description; W022: a confirmed tool without a summary."""
    messages: list[checks.CheckMessage] = []
    if not found.description:
        messages.append(
            checks.Warning(
                f"Tool {path!r} has no description: the model cannot tell when to use it.",
                hint="Give the function a docstring, or pass @tool(description=...).",
                id="sophie_chat.W021",
            )
        )
    if found.confirm and found.summary is None:
        messages.append(
            checks.Warning(
                f"Tool {path!r} asks the visitor to confirm but has no summary: the "
                "visitor is shown only its name.",
                hint='Pass @tool(summary=_("Move booking {booking_id} to {new_date}")).',
                id="sophie_chat.W022",
            )
        )
    return messages


def permission_exists(permission: str) -> bool:
    """Whether an installed model defines ``"app_label.codename"`` (no database needed)."""
    app_label, _, codename = permission.partition(".")
    if not codename:
        return False
    try:
        config = apps.get_app_config(app_label)
    except LookupError:
        return False
    for model in config.get_models():
        meta = model._meta
        defined = {f"{action}_{meta.model_name}" for action in meta.default_permissions}
        defined.update(code for code, _name in meta.permissions)
        if codename in defined:
            return True
    return False


def _error(message: str, hint: str, check_id: str) -> checks.Error:
    return checks.Error(message, hint=hint, id=f"sophie_chat.{check_id}")
