"""Wire protocol v1: inbound frame validation and outbound frame builders.

Inbound: :func:`parse_frame` turns one text frame into a typed, frozen
request (``SessionInit``, ``UserMessage``...) or raises a
:class:`~sophie_chat.exceptions.ChatError` whose ``code`` is the protocol
error code. Outbound: the ``*_frame`` functions build the JSON objects the
server sends, and :func:`message_object` a stored message's shape inside
them (docs/protocol.md). Nothing here touches the database.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from django.utils.translation import gettext as _

from sophie_chat import conf
from sophie_chat.exceptions import (
    ChatError,
    EmptyMessage,
    InvalidJSON,
    InvalidMessage,
    MessageTooLong,
)

FrameT = TypeVar("FrameT")

if TYPE_CHECKING:
    from datetime import datetime

    from sophie_chat.store import StoredMessage

PROTOCOL_VERSION = 1
MAX_CLIENT_MESSAGE_ID_LENGTH = 64
# Server ids are UUIDs and resume tokens are signed UUIDs: anything longer is not one.
MAX_ID_LENGTH = 64
MAX_RESUME_TOKEN_LENGTH = 256
# ``context.extra`` is stored as JSON: deeper nesting than this is refused, not walked.
MAX_EXTRA_DEPTH = 8

# ---------------------------------------------------------------------------
# Inbound


@dataclass(frozen=True, slots=True)
class PageContext:
    """Page facts sent by the widget in ``session_init.context``."""

    page_url: str = ""
    page_title: str = ""
    locale: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        if self.page_url:
            data["page_url"] = self.page_url
        if self.page_title:
            data["page_title"] = self.page_title
        if self.locale:
            data["locale"] = self.locale
        if self.extra:
            data["extra"] = self.extra
        return data


@dataclass(frozen=True, slots=True)
class SessionInit:
    session_id: str | None = None
    resume_token: str | None = None
    context: PageContext | None = None


@dataclass(frozen=True, slots=True)
class UserMessage:
    content: str
    client_message_id: str | None = None


@dataclass(frozen=True, slots=True)
class Typing:
    is_typing: bool


@dataclass(frozen=True, slots=True)
class Feedback:
    message_id: str
    rating: str
    comment: str = ""


@dataclass(frozen=True, slots=True)
class SessionRate:
    score: int
    comment: str = ""


@dataclass(frozen=True, slots=True)
class SessionClose:
    pass


@dataclass(frozen=True, slots=True)
class Ping:
    pass


@dataclass(frozen=True, slots=True)
class Confirm:
    """The visitor's answer to a ``confirm_request``."""

    confirmation_id: str
    accept: bool


@dataclass(frozen=True, slots=True)
class HandoffRequest:
    """The visitor asks for a person."""

    reason: str = ""


@dataclass(frozen=True, slots=True)
class HandoffCancel:
    """The visitor stops waiting for a person."""


@dataclass(frozen=True, slots=True)
class HandoffLeaveMessage:
    """A message for the team, left when nobody could take the conversation."""

    contact: str
    name: str = ""
    message: str = ""


ClientFrame = (
    SessionInit
    | UserMessage
    | Typing
    | Feedback
    | SessionRate
    | SessionClose
    | Ping
    | Confirm
    | HandoffRequest
    | HandoffCancel
    | HandoffLeaveMessage
)


def clean_text(text: str) -> str:
    """Normalize Unicode (NFC), drop control characters but newlines and tabs.

    This is all the server does to message text: it is never HTML-escaped on
    the way in.
    """
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n"))
    return "".join(
        ch for ch in text if ch in "\n\t" or unicodedata.category(ch) not in ("Cc", "Cs")
    )


def _is_unsafe(ch: str) -> bool:
    """NUL and other control characters, lone surrogates: never stored, never echoed."""
    return unicodedata.category(ch) in ("Cc", "Cs")


def safe_echo(text: str, limit: int = 40) -> str:
    """``text`` cut to ``limit`` characters without what :func:`_is_unsafe` refuses."""
    return "".join(ch for ch in text[:limit] if not _is_unsafe(ch))


def _field(
    data: dict[str, Any],
    name: str,
    kind: type | tuple[type, ...],
    *,
    required: bool = False,
    what: str,
) -> Any:
    value = data.get(name)
    if value is None:
        if required:
            raise InvalidMessage(_("The field “%(field)s” is required.") % {"field": name})
        return None
    # bool is an int subclass: never accept it where a number or text is asked for.
    if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _tuple(kind)):
        raise InvalidMessage(
            _("The field “%(field)s” must be %(what)s.") % {"field": name, "what": what}
        )
    return value


def _tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _identifier(
    data: dict[str, Any], name: str, limit: int, *, required: bool = False
) -> str | None:
    """An id or token: refused (never cleaned) when it holds what could not be stored."""
    value = _field(data, name, str, required=required, what=_("text"))
    if value is None:
        return None
    if not 0 < len(value) <= limit:
        raise InvalidMessage(
            _("The field “%(field)s” must be 1 to %(limit)d characters.")
            % {"field": name, "limit": limit}
        )
    if any(_is_unsafe(ch) for ch in value):
        raise InvalidMessage(
            _("The field “%(field)s” holds characters that are not allowed.") % {"field": name}
        )
    return value


def _clean_extra(value: Any, depth: int = 0) -> Any:
    """``context.extra`` with every string cleaned like message text, keys included."""
    if depth > MAX_EXTRA_DEPTH:
        raise InvalidMessage(
            _("The context is nested deeper than %(limit)d levels.") % {"limit": MAX_EXTRA_DEPTH}
        )
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {clean_text(key): _clean_extra(item, depth + 1) for key, item in value.items()}
    if isinstance(value, list):
        return [_clean_extra(item, depth + 1) for item in value]
    return value


def _bounded_text(data: dict[str, Any], name: str, limit: int) -> str:
    value = _field(data, name, str, what=_("text")) or ""
    value = clean_text(value).strip()
    if len(value) > limit:
        raise InvalidMessage(
            _("The field “%(field)s” is longer than %(limit)d characters.")
            % {"field": name, "limit": limit}
        )
    return value


def parse_context(value: Any) -> PageContext:
    """Validate ``session_init.context``; oversize context is refused, not truncated."""
    if not isinstance(value, dict):
        raise InvalidMessage(
            _("The field “%(field)s” must be %(what)s.")
            % {"field": "context", "what": _("an object")}
        )
    limit = conf.get("MAX_CONTEXT_SIZE_BYTES")
    # surrogatepass: a lone surrogate is measured here and cleaned below, not a crash.
    size = len(json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass"))
    if size > limit:
        raise InvalidMessage(
            _("The context is %(size)d bytes; at most %(limit)d are accepted.")
            % {"size": size, "limit": limit}
        )
    extra = _clean_extra(_field(value, "extra", dict, what=_("an object")) or {})
    return PageContext(
        page_url=_bounded_text(value, "page_url", 2000),
        page_title=_bounded_text(value, "page_title", 300),
        locale=_bounded_text(value, "locale", 16),
        extra=extra,
    )


def parse_frame(text: str | None, bytes_data: bytes | None = None) -> ClientFrame:
    """Validate one inbound frame. Raises a ``ChatError`` with the protocol code."""
    return parse_with(_PARSERS, text, bytes_data)


def parse_with(
    parsers: Mapping[str, Callable[[dict[str, Any]], FrameT]],
    text: str | None,
    bytes_data: bytes | None = None,
) -> FrameT:
    """One inbound frame through the envelope's checks (UTF-8, size, a JSON object with a
    known ``type``), then the parser of its type; shared by the chat and the staff inbox."""
    if text is None:
        if bytes_data is None:
            raise InvalidJSON()
        try:
            text = bytes_data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidJSON() from exc
    if len(text.encode("utf-8", "surrogatepass")) > conf.get("MAX_FRAME_BYTES"):
        raise MessageTooLong(
            _("The frame is larger than %(limit)d bytes.") % {"limit": conf.get("MAX_FRAME_BYTES")}
        )
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise InvalidJSON() from exc
    if not isinstance(data, dict):
        raise InvalidJSON()
    kind = data.get("type")
    if not isinstance(kind, str):
        raise InvalidMessage(_("The field “%(field)s” is required.") % {"field": "type"})
    parser = parsers.get(kind)
    if parser is None:
        raise InvalidMessage(_("Unknown message type “%(type)s”.") % {"type": safe_echo(kind)})
    return parser(data)


def _parse_session_init(data: dict[str, Any]) -> SessionInit:
    session_id = _identifier(data, "session_id", MAX_ID_LENGTH) if data.get("session_id") else None
    token = (
        _identifier(data, "resume_token", MAX_RESUME_TOKEN_LENGTH)
        if data.get("resume_token")
        else None
    )
    context = data.get("context")
    return SessionInit(
        session_id=session_id or None,
        resume_token=token or None,
        context=parse_context(context) if context is not None else None,
    )


def _parse_message(data: dict[str, Any]) -> UserMessage:
    content = _field(data, "content", str, required=True, what=_("text"))
    client_id = _identifier(data, "client_message_id", MAX_CLIENT_MESSAGE_ID_LENGTH)
    content = clean_text(content)
    stripped = content.strip()
    if not stripped:
        raise EmptyMessage(reply_to=client_id)
    if len(stripped) < conf.get("MIN_MESSAGE_LENGTH"):
        raise EmptyMessage(
            _("Please write at least %(limit)d characters.")
            % {"limit": conf.get("MIN_MESSAGE_LENGTH")},
            reply_to=client_id,
        )
    limit = conf.get("MAX_MESSAGE_LENGTH")
    if len(stripped) > limit:
        raise MessageTooLong(
            _("Your message is %(length)d characters long; the limit is %(limit)d.")
            % {"length": len(stripped), "limit": limit},
            reply_to=client_id,
        )
    return UserMessage(content=stripped, client_message_id=client_id)


def _parse_typing(data: dict[str, Any]) -> Typing:
    return Typing(is_typing=_field(data, "is_typing", bool, required=True, what=_("true or false")))


def _parse_feedback(data: dict[str, Any]) -> Feedback:
    message_id = _identifier(data, "message_id", MAX_ID_LENGTH, required=True)
    rating = _field(data, "rating", str, required=True, what=_("text"))
    if rating not in ("up", "down"):
        raise InvalidMessage(_("The rating must be “up” or “down”."))
    comment = _bounded_text(data, "comment", conf.get("MAX_FEEDBACK_LENGTH"))
    return Feedback(message_id=message_id, rating=rating, comment=comment)


def _parse_session_rate(data: dict[str, Any]) -> SessionRate:
    score = _field(data, "score", int, required=True, what=_("a whole number from 1 to 5"))
    if not 1 <= score <= 5:
        raise InvalidMessage(_("The score must be a whole number from 1 to 5."))
    comment = _bounded_text(data, "comment", conf.get("MAX_FEEDBACK_LENGTH"))
    return SessionRate(score=score, comment=comment)


def _parse_confirm(data: dict[str, Any]) -> Confirm:
    confirmation_id = _field(data, "confirmation_id", str, required=True, what=_("text"))
    accept = _field(data, "accept", bool, required=True, what=_("true or false"))
    return Confirm(confirmation_id=confirmation_id[:64], accept=accept)


def _parse_handoff_request(data: dict[str, Any]) -> HandoffRequest:
    return HandoffRequest(reason=_bounded_text(data, "reason", 500))


def _parse_leave_message(data: dict[str, Any]) -> HandoffLeaveMessage:
    contact = clean_text(_field(data, "contact", str, required=True, what=_("text"))).strip()
    if not contact:
        raise InvalidMessage(_("Give an e-mail address or a phone number."))
    return HandoffLeaveMessage(
        contact=contact[:254],
        name=_bounded_text(data, "name", 200),
        message=_bounded_text(data, "message", conf.get("MAX_MESSAGE_LENGTH")),
    )


_PARSERS = {
    "confirm": _parse_confirm,
    "session_init": _parse_session_init,
    "message": _parse_message,
    "typing": _parse_typing,
    "feedback": _parse_feedback,
    "session_rate": _parse_session_rate,
    "session_close": lambda data: SessionClose(),
    "ping": lambda data: Ping(),
    "handoff_request": _parse_handoff_request,
    "handoff_cancel": lambda data: HandoffCancel(),
    "handoff_leave_message": _parse_leave_message,
}

# ---------------------------------------------------------------------------
# Outbound


def encode(frame: dict[str, Any]) -> str:
    """``frame`` as JSON text that always encodes to UTF-8.

    Inbound text is validated, but a lone surrogate from anywhere else (a
    model, a backend) must not make the send raise: it is escaped instead.
    """
    text = json.dumps(frame, ensure_ascii=False, separators=(",", ":"))
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(frame, ensure_ascii=True, separators=(",", ":"))
    return text


def message_object(message: StoredMessage) -> dict[str, Any]:
    """A stored message in the protocol's message shape (``message``, ``stream_end``, history)."""
    data: dict[str, Any] = {
        "id": message.id,
        "role": message.role,
        "content": message.content,
        "created_at": message.created_at.isoformat(),
        "status": message.status,
    }
    if message.client_message_id:
        data["client_message_id"] = message.client_message_id
    if message.reply_to:
        data["reply_to"] = message.reply_to
    metadata = dict(message.metadata)
    if message.role == "agent":
        # Who answered, as the visitor may see it (docs/handoff.md).
        data["agent"] = metadata.pop("agent", None) or {"name": ""}
    if message.role == "assistant":
        metadata.setdefault("sources", [])
        metadata.setdefault("cached", False)
        metadata.setdefault("fallback", False)
    data["metadata"] = metadata
    return data


def welcome_frame(
    *,
    name: str,
    avatar_url: str | None,
    greeting: str,
    limits: dict[str, Any],
    features: dict[str, bool] | None = None,
) -> dict[str, Any]:
    assistant: dict[str, Any] = {"name": name}
    if avatar_url:
        assistant["avatar_url"] = avatar_url
    frame = {
        "type": "welcome",
        "assistant": assistant,
        "protocol": PROTOCOL_VERSION,
        "greeting": greeting,
        "limits": limits,
    }
    if features is not None:
        frame["features"] = features
    return frame


def session_frame(
    *,
    session_id: str,
    resume_token: str,
    resumed: bool,
    status: str,
    history: list[StoredMessage],
    locale: str = "",
    handoff: dict[str, Any] | None = None,
) -> dict[str, Any]:
    frame: dict[str, Any] = {
        "type": "session",
        "session_id": session_id,
        "resume_token": resume_token,
        "resumed": resumed,
        "status": status,
        "history": [message_object(message) for message in history],
    }
    if locale:
        frame["locale"] = locale
    if handoff is not None:
        # The handoff frame's fields, without its type (docs/protocol.md).
        frame["handoff"] = {key: value for key, value in handoff.items() if key != "type"}
    return frame


def message_frame(message: StoredMessage) -> dict[str, Any]:
    return {"type": "message", "message": message_object(message)}


def stream_start_frame(message_id: str, reply_to: str) -> dict[str, Any]:
    return {"type": "stream_start", "message_id": message_id, "reply_to": reply_to}


def stream_resume_frame(message_id: str, reply_to: str, content: str) -> dict[str, Any]:
    """``stream_start`` for a tab that resumed mid-answer: ``content`` is the text so far."""
    return {
        "type": "stream_start",
        "message_id": message_id,
        "reply_to": reply_to,
        "resumed": True,
        "content": content,
    }


def stream_delta_frame(message_id: str, delta: str) -> dict[str, Any]:
    return {"type": "stream_delta", "message_id": message_id, "delta": delta}


def stream_end_frame(message: StoredMessage) -> dict[str, Any]:
    return {"type": "stream_end", "message": message_object(message)}


def typing_frame(is_typing: bool, role: str) -> dict[str, Any]:
    return {"type": "typing", "is_typing": is_typing, "role": role}


def session_closed_frame(session_id: str) -> dict[str, Any]:
    return {"type": "session_closed", "session_id": session_id}


def ack_frame(of: str, **fields: Any) -> dict[str, Any]:
    """Extension: confirms a ``feedback`` or ``session_rate`` was stored."""
    return {"type": "ack", "of": of, **fields}


def tool_start_frame(message_id: str, call_id: str, name: str, label: str) -> dict[str, Any]:
    return {
        "type": "tool_start",
        "message_id": message_id,
        "call_id": call_id,
        "name": name,
        "label": label,
    }


def tool_end_frame(call_id: str, status: str) -> dict[str, Any]:
    return {"type": "tool_end", "call_id": call_id, "status": status}


def confirm_request_frame(
    *, confirmation_id: str, call_id: str, tool: str, summary: str, expires_at: datetime
) -> dict[str, Any]:
    return {
        "type": "confirm_request",
        "confirmation_id": confirmation_id,
        "call_id": call_id,
        "tool": tool,
        "summary": summary,
        "expires_at": expires_at.isoformat(),
    }


def confirm_closed_frame(confirmation_id: str, outcome: str) -> dict[str, Any]:
    return {"type": "confirm_closed", "confirmation_id": confirmation_id, "outcome": outcome}


def handoff_frame(
    state: str,
    *,
    agent: dict[str, str] | None = None,
    position: int | None = None,
    opens_at: datetime | None = None,
    cancelled: bool = False,
) -> dict[str, Any]:
    """The conversation's handoff state (docs/protocol.md, "Handoff to a person")."""
    frame: dict[str, Any] = {"type": "handoff", "state": state}
    if agent is not None:
        frame["agent"] = agent
    if position is not None:
        frame["position"] = position
    if opens_at is not None:
        frame["opens_at"] = opens_at.isoformat()
    if cancelled:
        frame["cancelled"] = True
    return frame


def pong_frame() -> dict[str, Any]:
    return {"type": "pong"}


def error_frame(error: ChatError) -> dict[str, Any]:
    """The one place where errors become protocol ``error`` frames."""
    frame: dict[str, Any] = {
        "type": "error",
        "code": error.code,
        "message": error.user_message(),
    }
    if error.retry_after is not None:
        frame["retry_after"] = error.retry_after
    if error.reply_to is not None:
        frame["reply_to"] = error.reply_to
    return frame
