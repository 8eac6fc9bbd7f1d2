"""Handoff state changes, each one conditional UPDATE, and their notifications.

Every public coroutine is safe across processes: a state change is an
``UPDATE ... WHERE state = <expected>`` and only the caller whose UPDATE
changed a row goes on to tell anyone. Two agents claiming at once, a claim
racing the wait timeout, a cancel racing a claim: one wins, the others get
False. The events sent on the channel layer are described in
:mod:`sophie_chat.handoff`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from channels.layers import get_channel_layer
from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from sophie_chat import conf, groups, metrics, protocol
from sophie_chat.business_hours import is_open_now, next_opening
from sophie_chat.db import database_call
from sophie_chat.models import ChatMessage, ChatSession, Handoff, Lead
from sophie_chat.signals import handoff_requested
from sophie_chat.store import StoredMessage

logger = logging.getLogger(__name__)

#: The channel-layer group of every open inbox (staff connections).
INBOX_GROUP = "sophie_chat.inbox"
#: The permission an agent needs (``Handoff.Meta.permissions``).
PERMISSION = "sophie_chat.handle_conversation"
#: How long an ended ``unavailable`` state is still shown to a tab that resumes.
UNAVAILABLE_SHOWN_FOR = timedelta(hours=1)

State = Handoff.State


class HandoffError(Exception):
    """A handoff operation that cannot be done; the message says why, for staff."""


class NotHeld(HandoffError):
    """The handoff is not active with this agent (ended, transferred, never claimed)."""


class InvalidText(HandoffError, ValueError):
    """An agent's message is empty or too long."""


@dataclass(frozen=True, slots=True)
class OpenHandoff:
    """A conversation's open handoff, as a turn needs it."""

    id: int
    state: str

    @property
    def held_by_person(self) -> bool:
        return self.state == State.ACTIVE


def enabled() -> bool:
    return bool(conf.get("HANDOFF")["ENABLED"])


def agent_profile(user: Any) -> dict[str, str]:
    """What a visitor is told of an agent: ``name`` (full name, else username)."""
    if user is None:
        return {"name": ""}
    name = (user.get_full_name() if hasattr(user, "get_full_name") else "") or ""
    return {"name": name.strip() or user.get_username()}


def _session_id(session: Any) -> str:
    """A session id from an id, a ``SessionState`` or a ``ChatSession``."""
    return session if isinstance(session, str) else str(session.id)


# -- availability ------------------------------------------------------------------

#: A coroutine function saying whether anyone can take a conversation now.
AvailabilityCheck = Callable[[], Awaitable[bool]]

_availability: list[AvailabilityCheck] = []


def availability(func: AvailabilityCheck) -> AvailabilityCheck:
    """Register a check of whether anyone can take a conversation now (usable as a
    decorator; registering twice is a no-op), such as the inbox's presence: within
    business hours, a request nobody can take is ``unavailable`` at once."""
    if func not in _availability:
        _availability.append(func)
    return func


def forget_availability(func: AvailabilityCheck) -> None:
    if func in _availability:
        _availability.remove(func)


async def someone_available() -> bool:
    """Whether every registered check says someone can take a conversation (True with
    none registered). A check that raises is logged and ignored."""
    for check in tuple(_availability):
        try:
            if not await check():
                return False
        except Exception:
            logger.exception("Handoff availability check failed; ignored")
    return True


# -- asking, cancelling -------------------------------------------------------------


async def request(session: Any, *, reason: str = "", origin: str = "") -> Handoff:
    """Ask for a person for ``session``: a new ``waiting`` handoff, ``unavailable`` out
    of hours, or the conversation's open handoff if it has one.

    Every tab of the visitor (but the connection ``origin``) and the inbox
    hear of a new one; a waiting one gets its timeout task in this process.
    """
    staffed = await someone_available()
    handoff, created = await _create(_session_id(session), reason.strip()[:1000], staffed)
    if created:
        metrics.handoff_event(handoff.state)
        await _announce(handoff, origin=origin)
        if handoff.state == State.WAITING:
            _watch(handoff)
    return handoff


@database_call
def _create(session_id: str, reason: str, staffed: bool) -> tuple[Handoff, bool]:
    found = _open_of(session_id)
    if found is not None:
        return found, False
    now = timezone.now()
    is_open, opens_at = is_open_now(now)
    try:
        with transaction.atomic():
            # In hours with nobody there, when the team is back is unknown (no opens_at).
            if is_open and staffed:
                handoff = Handoff.objects.create(
                    session_id=session_id, reason=reason, requested_at=now
                )
            else:
                handoff = Handoff.objects.create(
                    session_id=session_id,
                    state=State.UNAVAILABLE,
                    reason=reason,
                    requested_at=now,
                    ended_at=now,
                    opens_at=opens_at,
                )
    except IntegrityError:
        # Another tab or process opened one meanwhile (one open handoff per conversation).
        found = _open_of(session_id)
        if found is None:
            raise
        return found, False
    logger.info(
        "Handoff requested",
        extra={"session_id": session_id, "handoff": handoff.pk, "state": handoff.state},
    )
    _tell_staff(handoff)
    return handoff, True


def _open_of(session_id: str) -> Handoff | None:
    return (
        Handoff.objects.select_related("agent")
        .filter(session_id=session_id, state__in=Handoff.OPEN)
        .first()
    )


def _tell_staff(handoff: Handoff) -> None:
    """Send ``handoff_requested``; e-mail ``HANDOFF["NOTIFY"]`` of a waiting one. Never raises."""
    for receiver, error in handoff_requested.send_robust(sender=Handoff, handoff=handoff):
        if isinstance(error, Exception):
            logger.error(
                "A handoff_requested receiver failed",
                exc_info=error,
                extra={"handoff": handoff.pk, "receiver": getattr(receiver, "__qualname__", "")},
            )
    recipients = list(conf.get("HANDOFF")["NOTIFY"])
    if not recipients or handoff.state != State.WAITING:
        return
    with translation.override(settings.LANGUAGE_CODE):
        subject = _("A visitor is waiting to talk to a person")
        lines = [_("Open the chat inbox to take the conversation.")]
        if handoff.reason:
            lines.append(_("Reason: %(reason)s") % {"reason": handoff.reason})
    try:
        send_mail(subject, "\n\n".join(lines), None, recipients)
    except Exception:
        logger.exception("Handoff notification e-mail failed", extra={"handoff": handoff.pk})


async def cancel(session: Any, *, origin: str = "") -> bool:
    """The visitor stops waiting. False when nothing was waiting (claimed meanwhile)."""
    handoff = await _change(
        {"session_id": _session_id(session), "state": State.WAITING},
        state=State.CANCELLED,
        ended_at=timezone.now(),
    )
    if handoff is None:
        return False
    metrics.handoff_event("cancelled")
    await _announce(handoff, origin=origin)
    await _send_positions()
    return True


async def close(session: Any) -> bool:
    """The visitor closed the conversation: a waiting handoff is cancelled, an active
    one ended (with nobody as ``ended_by``). False when none was open."""
    session_id = _session_id(session)
    now = timezone.now()
    handoff = await _change(
        {"session_id": session_id, "state": State.WAITING}, state=State.CANCELLED, ended_at=now
    ) or await _change(
        {"session_id": session_id, "state": State.ACTIVE}, state=State.ENDED, ended_at=now
    )
    if handoff is None:
        return False
    metrics.handoff_event("cancelled" if handoff.state == State.CANCELLED else "ended")
    await _announce(handoff)
    await _send_positions()
    return True


# -- staff ---------------------------------------------------------------------------


async def claim(handoff_id: int, agent: Any) -> bool:
    """``agent`` takes a waiting conversation: the first claim wins, others get False.

    Raises ``PermissionDenied`` for a user without ``handle_conversation``.
    """
    await _require_permission(agent)
    await sweep()
    handoff = await _change(
        {"pk": handoff_id, "state": State.WAITING},
        state=State.ACTIVE,
        agent_id=agent.pk,
        claimed_at=timezone.now(),
    )
    if handoff is None:
        return False
    wait = (handoff.claimed_at - handoff.requested_at).total_seconds()
    metrics.handoff_event("claimed", wait_seconds=wait)
    await _announce(handoff)
    await _send_positions()
    return True


async def transfer(handoff_id: int, from_agent: Any, to_agent: Any) -> bool:
    """Hand an active conversation from ``from_agent`` (its holder) to ``to_agent``.

    False when ``from_agent`` does not hold it; ``PermissionDenied`` when
    either lacks ``handle_conversation``.
    """
    await _require_permission(from_agent)
    await _require_permission(to_agent)
    handoff = await _change(
        {"pk": handoff_id, "state": State.ACTIVE, "agent_id": from_agent.pk},
        agent_id=to_agent.pk,
    )
    if handoff is None:
        return False
    await _announce(handoff)
    return True


async def end(handoff_id: int, agent: Any) -> bool:
    """End an active conversation; Sophie answers again. False when it was not active."""
    await _require_permission(agent)
    handoff = await _change(
        {"pk": handoff_id, "state": State.ACTIVE},
        state=State.ENDED,
        ended_at=timezone.now(),
        ended_by_id=agent.pk,
    )
    if handoff is None:
        return False
    metrics.handoff_event("ended")
    await _announce(handoff)
    return True


async def send_agent_message(handoff_id: int, agent: Any, text: str) -> ChatMessage:
    """Store an agent's message (role ``agent``) and send it to the visitor's tabs.

    Raises :class:`NotHeld` unless ``agent`` holds the active handoff, and
    :class:`InvalidText` for an empty or too long text.
    """
    text = protocol.clean_text(str(text)).strip()
    if not text:
        raise InvalidText(_("Write a message first."))
    limit = conf.get("MAX_MESSAGE_LENGTH")
    if len(text) > limit:
        raise InvalidText(
            _("Your message is %(length)d characters long; the limit is %(limit)d.")
            % {"length": len(text), "limit": limit}
        )
    message, first_reply = await _store_agent_message(handoff_id, agent, text)
    if first_reply is not None:
        metrics.handoff_first_reply(first_reply)
    stored = StoredMessage.from_model(message)
    session_id = str(message.session_id)
    await _to_visitor(session_id, protocol.message_frame(stored))
    await _to_inbox(
        {
            "type": "inbox.message",
            "handoff_id": handoff_id,
            "session_id": session_id,
            "message": protocol.message_object(stored),
        }
    )
    return message


@database_call
def _store_agent_message(
    handoff_id: int, agent: Any, text: str
) -> tuple[ChatMessage, float | None]:
    """The stored message, and the seconds since the request when it is the first reply."""
    now = timezone.now()
    with transaction.atomic():
        handoff = Handoff.objects.select_for_update().filter(pk=handoff_id).first()
        if handoff is None or handoff.state != State.ACTIVE or handoff.agent_id != agent.pk:
            raise NotHeld(_("This conversation is not yours to answer."))
        message = ChatMessage.objects.create(
            session_id=handoff.session_id,
            role=ChatMessage.Role.AGENT,
            content=text,
            agent=agent,
            metadata={"agent": agent_profile(agent)},
            created_at=now,
        )
        first = Handoff.objects.filter(pk=handoff_id, first_reply_at__isnull=True).update(
            first_reply_at=now
        )
        ChatSession.objects.filter(pk=handoff.session_id).update(updated_at=now)
    return message, (now - handoff.requested_at).total_seconds() if first else None


async def agent_typing(handoff_id: int, agent: Any, is_typing: bool = True) -> bool:
    """Tell the visitor's tabs (and the other agents) that ``agent`` is typing.

    False, and nothing sent, unless ``agent`` holds the active handoff.
    """
    session_id = await _held_session(handoff_id, agent.pk)
    if session_id is None:
        return False
    await _to_visitor(session_id, protocol.typing_frame(is_typing, "agent"))
    await _to_inbox(
        {
            "type": "inbox.typing",
            "handoff_id": handoff_id,
            "session_id": session_id,
            "role": "agent",
            "agent_id": agent.pk,
            "is_typing": is_typing,
        }
    )
    return True


@database_call
def _held_session(handoff_id: int, agent_id: Any) -> str | None:
    session_id = (
        Handoff.objects.filter(pk=handoff_id, state=State.ACTIVE, agent_id=agent_id)
        .values_list("session_id", flat=True)
        .first()
    )
    return str(session_id) if session_id else None


async def _require_permission(user: Any) -> None:
    if not await _may_handle(user):
        raise PermissionDenied(_("You may not handle conversations."))


@database_call
def _may_handle(user: Any) -> bool:
    return bool(user is not None and user.is_active and user.has_perm(PERMISSION))


# -- waiting -------------------------------------------------------------------------


@database_call
def waiting_position(handoff: Handoff | int) -> int | None:
    """1 for the longest waiting conversation, 2 for the next...; None when not waiting."""
    pk = handoff if isinstance(handoff, int) else handoff.pk
    found = Handoff.objects.filter(pk=pk, state=State.WAITING).values("requested_at").first()
    if found is None:
        return None
    ahead = Handoff.objects.filter(state=State.WAITING, requested_at__lt=found["requested_at"])
    ties = Handoff.objects.filter(
        state=State.WAITING, requested_at=found["requested_at"], pk__lt=pk
    )
    return ahead.count() + ties.count() + 1


# Timeout tasks of this process, by handoff id.
_timers: dict[int, asyncio.Task[None]] = {}


def _watch(handoff: Handoff) -> None:
    """Give up on ``handoff`` ``WAIT_TIMEOUT`` after it was asked for, unless someone
    claims it first (once per process: a resumed conversation's timer is not doubled)."""
    running = _timers.get(handoff.pk)
    if running is not None and not running.done():
        return
    timeout = float(conf.get("HANDOFF")["WAIT_TIMEOUT"])
    waited = (timezone.now() - handoff.requested_at).total_seconds()
    task = asyncio.create_task(_expire_later(handoff.pk, max(0.0, timeout - waited)))
    _timers[handoff.pk] = task
    # Forget it once done, unless a newer timer took its place.
    task.add_done_callback(
        lambda done: _timers.pop(handoff.pk) if _timers.get(handoff.pk) is done else None
    )


async def _expire_later(handoff_id: int, delay: float) -> None:
    await asyncio.sleep(delay)
    try:
        await expire(handoff_id)
    except Exception:
        # The sweep on the next claim or inbox listing catches it.
        logger.exception("Handoff timeout failed", extra={"handoff": handoff_id})


async def expire(handoff_id: int) -> bool:
    """Nobody claimed ``handoff_id`` in time: it becomes ``abandoned`` (the visitor
    hears ``unavailable`` with when the team is back). False when it was not waiting."""
    now = timezone.now()
    handoff = await _change(
        {"pk": handoff_id, "state": State.WAITING},
        state=State.ABANDONED,
        ended_at=now,
        opens_at=next_opening(now),
    )
    if handoff is None:
        return False
    logger.info("Handoff timed out", extra={"handoff": handoff_id})
    metrics.handoff_event("abandoned")
    await _announce(handoff)
    await _send_positions()
    return True


async def sweep() -> int:
    """Expire every handoff waiting longer than ``WAIT_TIMEOUT`` (a restarted process's
    timers are gone). Returns how many expired."""
    late = await _overdue(timezone.now())
    expired = 0
    for handoff_id in late:
        expired += await expire(handoff_id)
    return expired


@database_call
def _overdue(now: datetime) -> list[int]:
    cutoff = now - timedelta(seconds=float(conf.get("HANDOFF")["WAIT_TIMEOUT"]))
    return list(
        Handoff.objects.filter(state=State.WAITING, requested_at__lte=cutoff).values_list(
            "pk", flat=True
        )
    )


async def open_handoffs() -> list[Handoff]:
    """The waiting (oldest first) then active handoffs, with session and agent loaded.

    Those waiting past their timeout are expired first (:func:`sweep`), so a
    restarted process's lost timers cost no visitor more than one listing.
    """
    await sweep()
    return await _open_handoffs()


@database_call
def _open_handoffs() -> list[Handoff]:
    found = Handoff.objects.select_related("session", "agent").filter(state__in=Handoff.OPEN)
    return sorted(found, key=lambda h: (h.state != State.WAITING, h.requested_at, h.pk))


# -- the visitor's side --------------------------------------------------------------


@database_call
def open_handoff(session_id: str) -> OpenHandoff | None:
    """The conversation's waiting or active handoff (one indexed query)."""
    found = (
        Handoff.objects.filter(session_id=session_id, state__in=Handoff.OPEN)
        .values_list("pk", "state")
        .first()
    )
    return OpenHandoff(*found) if found else None


async def session_state(session_id: str) -> dict[str, Any] | None:
    """The ``handoff`` frame a resuming tab gets in ``session`` (None: nothing to show)."""
    handoff = await _latest(session_id)
    if handoff is None:
        return None
    if handoff.state == State.WAITING:
        # The process that held its timer may have restarted: this one keeps time now.
        _watch(handoff)
    return await state_frame(handoff)


@database_call
def _latest(session_id: str) -> Handoff | None:
    handoff = Handoff.objects.select_related("agent").filter(session_id=session_id).first()
    if handoff is None or handoff.state in (State.ENDED, State.CANCELLED):
        return None
    if handoff.state in Handoff.OPEN:
        return handoff
    recent = handoff.ended_at and handoff.ended_at > timezone.now() - UNAVAILABLE_SHOWN_FOR
    return handoff if recent else None


async def state_frame(handoff: Handoff) -> dict[str, Any]:
    """The visitor's ``handoff`` frame for ``handoff`` (its agent loaded)."""
    match handoff.state:
        case State.WAITING:
            position = await waiting_position(handoff.pk)
            return protocol.handoff_frame("waiting", position=position)
        case State.ACTIVE:
            return protocol.handoff_frame("active", agent=agent_profile(handoff.agent))
        case State.UNAVAILABLE | State.ABANDONED:
            return protocol.handoff_frame("unavailable", opens_at=handoff.opens_at)
        case State.CANCELLED:
            return protocol.handoff_frame("ended", cancelled=True)
        case _:
            return protocol.handoff_frame("ended")


@database_call
def rate_person(session_id: str, score: int) -> bool:
    """The visitor's rating after a person's conversation: kept on its latest ended handoff
    (human CSAT). False when the conversation had none waiting for a rating."""
    pk = (
        Handoff.objects.filter(
            session_id=session_id, state=State.ENDED, satisfaction_score__isnull=True
        )
        .values_list("pk", flat=True)
        .first()
    )
    if pk is None:
        return False
    return bool(Handoff.objects.filter(pk=pk).update(satisfaction_score=score))


async def visitor_message(handoff_id: int, session_id: str, message: StoredMessage) -> None:
    """A visitor's message in a handed-off conversation, for the inbox."""
    await _to_inbox(
        {
            "type": "inbox.message",
            "handoff_id": handoff_id,
            "session_id": session_id,
            "message": protocol.message_object(message),
        }
    )


async def visitor_typing(handoff_id: int, session_id: str, is_typing: bool) -> None:
    """The visitor is typing (or stopped), for the inbox."""
    await _to_inbox(
        {
            "type": "inbox.typing",
            "handoff_id": handoff_id,
            "session_id": session_id,
            "role": "user",
            "is_typing": is_typing,
        }
    )


async def leave_message(
    session_id: str, *, name: str, contact: str, message: str, locale: str = ""
) -> Lead:
    """Store a message for the team (a :class:`~sophie_chat.models.Lead` with ``source``
    ``handoff``) and tell the inbox. Raises ``ValidationError`` without a contact."""
    lead = await _store_lead(session_id, name.strip()[:200], contact.strip(), message, locale)
    await _to_inbox(
        {"type": "inbox.lead", "lead_id": lead.pk, "session_id": session_id, "state": "new"}
    )
    return lead


@database_call
def _store_lead(session_id: str, name: str, contact: str, message: str, locale: str) -> Lead:
    email = phone = ""
    if "@" in contact:
        validate_email(contact)
        email = contact
    elif sum(ch.isdigit() for ch in contact) >= 8:
        phone = contact[:40]
    else:
        raise ValidationError(_("Give an e-mail address or a phone number."))
    session = ChatSession.objects.filter(pk=session_id).values("user_id").first() or {}
    return Lead.objects.create(
        session_id=session_id,
        user_id=session.get("user_id"),
        name=name,
        email=email,
        phone=phone,
        details=message.strip()[:1000],
        locale=locale[:16],
        source="handoff",
    )


# -- state changes and notifications -------------------------------------------------


@database_call
def _change(where: dict[str, Any], **values: Any) -> Handoff | None:
    """One conditional UPDATE of the handoff matching ``where``; the row if it changed."""
    pk = Handoff.objects.filter(**where).values_list("pk", flat=True).first()
    if pk is None:
        return None
    where = {key: value for key, value in where.items() if key != "pk"}
    if not Handoff.objects.filter(pk=pk, **where).update(**values):
        return None  # another process changed it first
    return Handoff.objects.select_related("agent").get(pk=pk)


async def _announce(handoff: Handoff, *, origin: str = "") -> None:
    """Tell the visitor's tabs (but ``origin``) and the inbox of ``handoff``'s state."""
    if handoff.state != State.WAITING:
        timer = _timers.pop(handoff.pk, None)
        if timer is not None and timer is not asyncio.current_task():
            timer.cancel()
    await _to_visitor(str(handoff.session_id), await state_frame(handoff), origin=origin)
    await _to_inbox(
        {
            "type": "inbox.changed",
            "handoff_id": handoff.pk,
            "session_id": str(handoff.session_id),
            "state": handoff.state,
        }
    )


async def _send_positions() -> None:
    """Every waiting visitor's tabs hear their place in the queue (it moved)."""
    for position, (session_id,) in enumerate(await _queue(), start=1):
        await _to_visitor(session_id, protocol.handoff_frame("waiting", position=position))


@database_call
def _queue() -> list[tuple[str]]:
    rows = Handoff.objects.filter(state=State.WAITING).order_by("requested_at", "pk")
    return [(str(session_id),) for session_id in rows.values_list("session_id", flat=True)]


async def _to_visitor(session_id: str, frame: dict[str, Any], *, origin: str = "") -> None:
    event = {"type": "chat.relay", "frame": frame, "origin": origin}
    await groups.send(get_channel_layer(), groups.session_group(session_id), event)


async def _to_inbox(event: dict[str, Any]) -> None:
    await groups.send(get_channel_layer(), INBOX_GROUP, event)
