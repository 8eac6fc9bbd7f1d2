"""Handoff to a person: a visitor asks, an agent claims, they talk, Sophie waits.

The state of a conversation's handoff is the :class:`~sophie_chat.models.Handoff`
row; the coroutines here change it (each change one conditional UPDATE, safe
across processes) and tell everyone concerned on the channel layer. They hold
no consumer code: the visitor's consumer, the staff inbox and tests call them
alike. Agents are Django users with the ``sophie_chat.handle_conversation``
permission.

States: ``waiting`` -> ``active`` (claimed) -> ``ended`` (by the agent);
``waiting`` -> ``cancelled`` (by the visitor) or ``abandoned`` (nobody claimed
it within ``HANDOFF["WAIT_TIMEOUT"]``); ``unavailable`` when asked out of
business hours. The visitor hears ``waiting`` (with ``position``),
``active`` (with ``agent``), ``ended`` (``cancelled: true`` after a cancel)
or ``unavailable`` (with ``opens_at``; also after ``abandoned``).

Events on the channel layer:

To the visitor session's group (:func:`sophie_chat.groups.session_group`),
as ``{"type": "chat.relay", "frame": <frame>, "origin": <channel or "">}``
which the chat consumer sends to its tab as it is:

- ``handoff`` frames on every state change and whenever the queue moves;
- ``message`` frames with ``message.role`` ``"agent"`` and ``message.agent``
  ``{"name"}``;
- ``typing`` frames with ``role`` ``"agent"``.

To the staff group :data:`INBOX_GROUP` (``"sophie_chat.inbox"``), events whose
``type`` maps to a consumer method (``inbox.changed`` -> ``inbox_changed``):

- ``{"type": "inbox.changed", "handoff_id", "session_id", "state"}``: a
  handoff was requested, claimed, transferred, ended, cancelled or expired
  (``state`` is the stored state);
- ``{"type": "inbox.message", "handoff_id", "session_id", "message"}``: a
  message in a handed-off conversation (the visitor's, while waiting or
  active, and the agents'), ``message`` in the protocol's message shape;
- ``{"type": "inbox.typing", "handoff_id", "session_id", "role", "is_typing"}``
  (``role`` ``"user"`` or ``"agent"``, with ``agent_id`` for an agent);
- ``{"type": "inbox.lead", "lead_id", "session_id", "state": "new"}``: a
  visitor nobody could take left a message for the team.
"""

from sophie_chat.handoff.service import (
    INBOX_GROUP,
    PERMISSION,
    HandoffError,
    InvalidText,
    NotHeld,
    OpenHandoff,
    agent_profile,
    agent_typing,
    availability,
    cancel,
    claim,
    close,
    enabled,
    end,
    expire,
    forget_availability,
    is_open_now,
    leave_message,
    open_handoff,
    open_handoffs,
    rate_person,
    request,
    send_agent_message,
    session_state,
    someone_available,
    state_frame,
    sweep,
    transfer,
    visitor_message,
    visitor_typing,
    waiting_position,
)

__all__ = [
    "INBOX_GROUP",
    "PERMISSION",
    "HandoffError",
    "InvalidText",
    "NotHeld",
    "OpenHandoff",
    "agent_profile",
    "agent_typing",
    "availability",
    "cancel",
    "claim",
    "close",
    "enabled",
    "end",
    "expire",
    "forget_availability",
    "is_open_now",
    "leave_message",
    "open_handoff",
    "open_handoffs",
    "rate_person",
    "request",
    "send_agent_message",
    "session_state",
    "someone_available",
    "state_frame",
    "sweep",
    "transfer",
    "visitor_message",
    "visitor_typing",
    "waiting_position",
]
