"""A tool: one of the host's typed functions, made callable by the model.

:func:`tool` wraps a function (sync or async) in a :class:`Tool`. The
argument schema the model sees comes from the function's signature and
docstring through pydantic (``create_model``): no schema is written by
hand. A parameter annotated :class:`ToolContext` receives the visitor and
is never shown to the model. Arguments from the model are validated before
the function runs (:meth:`Tool.validate`); who may use the tool is decided
by :meth:`Tool.allows` (``requires_login``, ``permission``, ``allowed``).
"""

from __future__ import annotations

import datetime
import decimal
import inspect
import logging
import re
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, get_type_hints

import pydantic
from django.utils import formats, timezone
from django.utils.functional import Promise

from sophie_chat.db import run_in_database_thread

logger = logging.getLogger(__name__)

#: Tool names the model can use (the chat-completions API's rule).
NAME_PATTERN = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


@dataclass(frozen=True, slots=True)
class ToolContext:
    """Who a tool runs for, given to the parameter annotated ``ToolContext``.

    ``user`` is the Django user (``AnonymousUser`` when not logged in): filter
    the objects a tool reads or changes by it (``Booking.objects.filter(
    customer=context.user)``); the model chooses the arguments, never who the
    visitor is.
    """

    user: Any
    user_id: int | None
    session_id: str
    locale: str
    #: The page the visitor is on, as the widget reported it (``url``, ``title``...).
    page: Mapping[str, Any] = field(default_factory=dict)
    user_type: str = "anonymous"
    #: The id of the call in progress (empty outside a call, e.g. when offering tools).
    call_id: str = ""

    @property
    def is_authenticated(self) -> bool:
        return bool(getattr(self.user, "is_authenticated", False))


class ToolError(Exception):
    """Raise it from a tool to tell the model what went wrong, in words it may repeat.

    Its message goes back to the model as the tool's result (status
    ``error``); any other exception is logged and the model only hears that
    the tool failed.
    """


class ToolArgumentsInvalid(ValueError):
    """The model's arguments do not fit the tool's parameters. The message says how."""


@dataclass(frozen=True, slots=True)
class ToolDefinition:
    """What the model is told about a tool: its name, description and JSON schema."""

    name: str
    description: str
    parameters: dict[str, Any]

    def as_openai(self) -> dict[str, Any]:
        """The chat-completions ``tools`` item."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.parameters,
            },
        }


class Tool:
    """A function the model may call; build it with :func:`tool`.

    Calling the :class:`Tool` calls the function itself (handy in the host's
    own tests). The engine uses :meth:`definition`, :meth:`allows`,
    :meth:`validate` and :meth:`run`.
    """

    def __init__(
        self,
        func: Callable[..., Any],
        *,
        name: str | None = None,
        description: str | None = None,
        requires_login: bool = False,
        permission: str | None = None,
        allowed: Callable[[ToolContext], bool] | None = None,
        confirm: bool = False,
        summary: str | Promise | None = None,
        label: str | Promise | None = None,
        timeout: float | None = None,
        log_arguments: bool = False,
        redact: tuple[str, ...] | list[str] = (),
    ) -> None:
        self.func = func
        self.name = name or func.__name__
        self.requires_login = requires_login
        self.permission = permission
        self.allowed = allowed
        self.confirm = confirm
        self.summary = summary
        self.label = label
        self.timeout = timeout
        self.log_arguments = log_arguments
        self.redact = tuple(redact)
        self.is_async = inspect.iscoroutinefunction(func)
        self.__doc__ = func.__doc__
        self.__name__ = getattr(func, "__name__", self.name)
        self.__module__ = getattr(func, "__module__", __name__)
        self.__qualname__ = getattr(func, "__qualname__", self.name)
        summary_text, self.parameter_docs = _parse_docstring(inspect.getdoc(func) or "")
        self.description = description or summary_text
        #: The parameter that receives the :class:`ToolContext`, if any.
        self.context_parameter: str | None = None
        #: Why the argument schema could not be built (a system check reports it).
        self.schema_error: str | None = None
        self.arguments_model: type[pydantic.BaseModel] | None = None
        try:
            self.arguments_model = self._build_arguments_model()
        except Exception as exc:  # pydantic's errors, a bad annotation, *args...
            self.schema_error = f"{type(exc).__name__}: {exc}"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.func(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<Tool {self.name}>"

    # -- the schema ---------------------------------------------------------------------

    def _build_arguments_model(self) -> type[pydantic.BaseModel]:
        signature = inspect.signature(self.func)
        hints = get_type_hints(self.func, include_extras=True)
        fields: dict[str, Any] = {}
        for parameter in signature.parameters.values():
            annotation = hints.get(parameter.name, Any)
            if annotation is ToolContext:
                self.context_parameter = parameter.name
                continue
            if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
                raise TypeError(f"parameter {parameter.name!r}: a tool takes no *args or **kwargs")
            if parameter.kind is parameter.POSITIONAL_ONLY:
                raise TypeError(f"parameter {parameter.name!r} is positional-only")
            default = ... if parameter.default is parameter.empty else parameter.default
            docs = self.parameter_docs.get(parameter.name)
            fields[parameter.name] = (
                annotation,
                pydantic.Field(default, description=docs) if docs else default,
            )
        model = pydantic.create_model(  # type: ignore[call-overload]
            f"{self.name}_arguments",
            __config__=pydantic.ConfigDict(extra="forbid"),
            **fields,
        )
        # Fails here, not at the first call, for a type pydantic cannot map.
        model.model_json_schema()
        return model

    def definition(self) -> ToolDefinition:
        """The name, description and JSON schema of the arguments, for the model."""
        assert self.arguments_model is not None, self.schema_error
        schema = self.arguments_model.model_json_schema()
        schema.pop("title", None)
        return ToolDefinition(self.name, self.description, schema)

    @property
    def argument_names(self) -> tuple[str, ...]:
        if self.arguments_model is None:
            return ()
        return tuple(self.arguments_model.model_fields)

    # -- permissions --------------------------------------------------------------------

    async def allows(self, context: ToolContext) -> bool:
        """Whether the visitor may use the tool: offered to the model, and run.

        ``requires_login``, then ``permission`` (``user.has_perm``), then
        ``allowed(context)`` (sync or async); all must agree. Anything raised
        by ``allowed`` refuses.
        """
        if (self.requires_login or self.permission) and not context.is_authenticated:
            return False
        if self.permission and not await run_in_database_thread(
            context.user.has_perm, self.permission
        ):
            return False
        if self.allowed is not None:
            try:
                if inspect.iscoroutinefunction(self.allowed):
                    return bool(await self.allowed(context))
                return bool(await run_in_database_thread(self.allowed, context))
            except Exception:
                logger.exception("Tool %s: allowed() failed; refused", self.name)
                return False
        return True

    # -- a call -------------------------------------------------------------------------

    def validate(self, arguments: str | Mapping[str, Any] | None) -> dict[str, Any]:
        """The model's arguments (JSON text or a dict), validated and converted.

        Raises :class:`ToolArgumentsInvalid` with a message for the model.
        """
        assert self.arguments_model is not None, self.schema_error
        try:
            if isinstance(arguments, str):
                validated = self.arguments_model.model_validate_json(arguments or "{}")
            else:
                validated = self.arguments_model.model_validate(dict(arguments or {}))
        except pydantic.ValidationError as exc:
            raise ToolArgumentsInvalid(_describe_errors(exc)) from None
        return {name: getattr(validated, name) for name in self.arguments_model.model_fields}

    def redacted(self, arguments: Mapping[str, Any]) -> dict[str, Any]:
        """``arguments`` as stored in the call record: ``redact``-ed ones replaced."""
        return {
            name: "[redacted]" if name in self.redact else _jsonable(value)
            for name, value in arguments.items()
        }

    def summary_text(self, arguments: Mapping[str, Any]) -> str:
        """The confirmation's plain-text summary in the active language.

        ``summary`` is a format string over the arguments (lazy-translated); a
        tool without one is summarised by its name.
        """
        if self.summary is None:
            return str(self.name)
        values = {name: display_value(value) for name, value in arguments.items()}
        try:
            return str(self.summary).format(**values)
        except (KeyError, IndexError, ValueError):
            return str(self.summary)

    def summary_fields(self) -> set[str]:
        """The argument names ``summary`` refers to (checked by ``sophie_chat.E023``)."""
        if self.summary is None:
            return set()
        names = set()
        for _text, name, _spec, _conversion in string.Formatter().parse(str(self.summary)):
            if name:
                names.add(re.split(r"[.\[]", name, maxsplit=1)[0])
        return names

    async def run(self, arguments: Mapping[str, Any], context: ToolContext) -> Any:
        """Call the function with validated ``arguments`` (sync ones in a database thread)."""
        kwargs = dict(arguments)
        if self.context_parameter is not None:
            kwargs[self.context_parameter] = context
        if self.is_async:
            return await self.func(**kwargs)
        return await run_in_database_thread(self.func, **kwargs)


def tool(
    func: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    description: str | None = None,
    requires_login: bool = False,
    permission: str | None = None,
    allowed: Callable[[ToolContext], bool] | None = None,
    confirm: bool = False,
    summary: str | Promise | None = None,
    label: str | Promise | None = None,
    timeout: float | None = None,
    log_arguments: bool = False,
    redact: tuple[str, ...] | list[str] = (),
) -> Any:
    """Make a function a tool; list its dotted path in ``SOPHIE_CHAT["TOOLS"]``.

    Use it bare (``@tool``) or with options (``@tool(confirm=True)``):

    * ``name``, ``description``: what the model sees (default: the
      function's name and its docstring's first paragraph; ``Args:`` lines of
      the docstring describe the parameters);
    * ``requires_login``, ``permission`` (``"app_label.codename"``),
      ``allowed`` (``callable(context) -> bool``, sync or async): who may
      use it; a tool the visitor may not use is neither offered nor run;
    * ``confirm``: the visitor confirms each call first, shown ``summary``
      (a format string over the arguments, e.g. ``_("Move booking
      {booking_id} to {new_date}")``);
    * ``label``: what the widget shows while it runs ("Looking up your
      bookings…"); ``timeout``: seconds (default ``TOOL_TIMEOUT``);
    * ``log_arguments``: argument values may appear in logs (default: never);
      ``redact``: argument names stored as ``[redacted]`` in call records.
    """
    options = dict(
        name=name,
        description=description,
        requires_login=requires_login,
        permission=permission,
        allowed=allowed,
        confirm=confirm,
        summary=summary,
        label=label,
        timeout=timeout,
        log_arguments=log_arguments,
        redact=redact,
    )
    if func is not None:
        return Tool(func, **options)  # type: ignore[arg-type]

    def decorate(function: Callable[..., Any]) -> Tool:
        return Tool(function, **options)  # type: ignore[arg-type]

    return decorate


def _parse_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """The description (text before ``Args:``) and each parameter's line of ``Args:``."""
    description_lines: list[str] = []
    parameters: dict[str, str] = {}
    current: str | None = None
    in_args = False
    for line in doc.splitlines():
        stripped = line.strip()
        if stripped.lower() in {"args:", "arguments:", "parameters:"}:
            in_args = True
            continue
        if in_args:
            match = re.match(r"^(\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$", stripped)
            if match and not line.startswith(" " * 8):
                current = match.group(1)
                parameters[current] = match.group(2)
            elif stripped and current:
                parameters[current] += " " + stripped
            elif not stripped:
                current = None
            if stripped.endswith(":") and not match:
                in_args = False  # another section (Returns:, Raises:)
            continue
        description_lines.append(line)
    description = "\n".join(description_lines).strip()
    return description, parameters


def _describe_errors(exc: pydantic.ValidationError) -> str:
    # Locations and messages only: the values are the model's own and may be long.
    parts = []
    for error in exc.errors(include_url=False, include_input=False):
        location = ".".join(str(part) for part in error["loc"]) or "arguments"
        parts.append(f"{location}: {error['msg']}")
    return "; ".join(parts)


def display_value(value: Any) -> str:
    """An argument as the visitor reads it in a summary: dates, times and numbers in the
    active language's formats ("18 de dezembro de 2026", not "2026-12-18")."""
    if isinstance(value, datetime.datetime) and timezone.is_aware(value):
        value = timezone.localtime(value)
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, datetime.date | datetime.time | int | float | decimal.Decimal):
        return str(formats.localize(value, use_l10n=True))
    return str(value)


def _jsonable(value: Any) -> Any:
    return pydantic.TypeAdapter(Any).dump_python(value, mode="json")
