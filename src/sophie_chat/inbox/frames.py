"""The staff inbox's frames (docs/protocol.md, "Staff inbox"): validation and builders.

Inbound: :func:`parse_frame` turns one text frame into a typed, frozen
request or raises a :class:`~sophie_chat.exceptions.ChatError` whose
``code`` is the protocol error code, as the visitor protocol does
(:mod:`sophie_chat.protocol`, whose helpers it shares).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from sophie_chat import conf
from sophie_chat.exceptions import ChatError, InvalidMessage, MessageTooLong
from sophie_chat.protocol import (
    MAX_CLIENT_MESSAGE_ID_LENGTH,
    _bounded_text,
    _field,
    clean_text,
    parse_with,
)

#: Internal notes are for colleagues, not essays.
MAX_NOTE_LENGTH = 4000
PRESENCE_STATES = ("online", "away")


class HandoffNotFound(ChatError):
    code = "handoff_not_found"
    default_message = gettext_lazy("This conversation is no longer in the inbox.")


class AlreadyClaimed(ChatError):
    code = "already_claimed"
    default_message = gettext_lazy("Another agent took this conversation first.")


class NotWaiting(ChatError):
    code = "not_waiting"
    default_message = gettext_lazy(
        "This conversation is no longer waiting: the visitor left or it was closed."
    )


def already_claimed_message(name: str) -> str:
    return _("%(name)s took this conversation first.") % {"name": name}


class NotYours(ChatError):
    code = "not_yours"
    default_message = gettext_lazy(
        "Only the agent holding this conversation can do that; claim it first."
    )


class AgentUnavailable(ChatError):
    code = "agent_unavailable"
    default_message = gettext_lazy("That agent cannot take conversations.")


class NotAllowed(ChatError):
    code = "forbidden"
    default_message = gettext_lazy("You no longer have access to the inbox.")
    close_code = 4403


@dataclass(frozen=True, slots=True)
class Ping:
    pass


@dataclass(frozen=True, slots=True)
class Open:
    handoff_id: int


@dataclass(frozen=True, slots=True)
class Claim:
    handoff_id: int


@dataclass(frozen=True, slots=True)
class Transfer:
    handoff_id: int
    agent_id: int


@dataclass(frozen=True, slots=True)
class End:
    handoff_id: int


@dataclass(frozen=True, slots=True)
class AgentMessage:
    handoff_id: int
    content: str
    client_message_id: str | None


@dataclass(frozen=True, slots=True)
class Typing:
    handoff_id: int
    is_typing: bool


@dataclass(frozen=True, slots=True)
class Note:
    handoff_id: int
    content: str


@dataclass(frozen=True, slots=True)
class Presence:
    state: str


StaffFrame = Ping | Open | Claim | Transfer | End | AgentMessage | Typing | Note | Presence


def _id(data: dict[str, Any], name: str = "handoff_id") -> int:
    value = _field(data, name, int, required=True, what=_("a positive whole number"))
    if value < 1:
        raise InvalidMessage(
            _("The field “%(field)s” must be %(what)s.")
            % {"field": name, "what": _("a positive whole number")}
        )
    return value


def _text(data: dict[str, Any], name: str, limit: int) -> str:
    value = clean_text(_field(data, name, str, required=True, what=_("text"))).strip()
    if not value:
        raise InvalidMessage(_("Please type a message."))
    if len(value) > limit:
        raise MessageTooLong(
            _("Your message is %(length)d characters long; the limit is %(limit)d.")
            % {"length": len(value), "limit": limit}
        )
    return value


def _message(data: dict[str, Any]) -> AgentMessage:
    client_id = _field(data, "client_message_id", str, what=_("text"))
    if client_id is not None and not (0 < len(client_id) <= MAX_CLIENT_MESSAGE_ID_LENGTH):
        raise InvalidMessage(
            _("The field “%(field)s” must be 1 to %(limit)d characters.")
            % {"field": "client_message_id", "limit": MAX_CLIENT_MESSAGE_ID_LENGTH}
        )
    return AgentMessage(
        _id(data), _text(data, "content", conf.get("MAX_MESSAGE_LENGTH")), client_id
    )


def _presence(data: dict[str, Any]) -> Presence:
    state = _bounded_text(data, "state", 16)
    if state not in PRESENCE_STATES:
        raise InvalidMessage(_("The state must be “online” or “away”."))
    return Presence(state)


_PARSERS = {
    "ping": lambda data: Ping(),
    "open": lambda data: Open(_id(data)),
    "claim": lambda data: Claim(_id(data)),
    "transfer": lambda data: Transfer(_id(data), _id(data, "agent_id")),
    "end": lambda data: End(_id(data)),
    "message": _message,
    "typing": lambda data: Typing(
        _id(data), _field(data, "is_typing", bool, required=True, what=_("true or false"))
    ),
    "note": lambda data: Note(_id(data), _text(data, "content", MAX_NOTE_LENGTH)),
    "presence": _presence,
}


def parse_frame(text: str | None, bytes_data: bytes | None = None) -> StaffFrame:
    """Validate one inbound staff frame. Raises a ``ChatError`` with the protocol code."""
    return parse_with(_PARSERS, text, bytes_data)


def error_frame(error: ChatError, handoff_id: int | None = None) -> dict[str, Any]:
    frame: dict[str, Any] = {"type": "error", "code": error.code, "message": error.user_message()}
    if handoff_id is not None:
        frame["handoff_id"] = handoff_id
    return frame
