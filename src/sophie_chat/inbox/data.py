"""What the inbox reads and writes: conversations handed to people, transcripts, notes.

Each public function is one unit of work in Sophie's database threads
(:func:`sophie_chat.db.database_call`), or async around one. Rows leave
here as plain JSON-ready dicts in the shapes of docs/protocol.md ("Staff
inbox"), ready for a frame.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.cache import cache
from django.db.models import Q
from django.utils import timezone

from sophie_chat import async_cache, protocol
from sophie_chat.context import ContextRequest, build_context
from sophie_chat.db import database_call
from sophie_chat.models import CannedReply, ChatMessage, Handoff, InternalNote, Lead
from sophie_chat.store import StoredMessage

#: States an agent still has to act on, listed first (waiting before active).
OPEN_STATES = ("waiting", "active")
#: How long a closed handoff stays in the list, and how many of those.
RECENT = timedelta(hours=24)
MAX_RECENT = 50
#: The latest messages of a transcript the inbox shows.
MAX_TRANSCRIPT = 200
PREVIEW_LENGTH = 120
_READ_KEY = "sophie_chat:inbox:read:{}:{}"


def display_name(user: Any) -> str:
    """A person's name as the inbox and the visitor see it: full name, else username."""
    if user is None:
        return ""
    name = user.get_full_name() if hasattr(user, "get_full_name") else ""
    return name or user.get_username()


def _agents_query() -> Any:
    app_label, codename = "sophie_chat", "handle_conversation"
    permission = Permission.objects.filter(content_type__app_label=app_label, codename=codename)
    return (
        get_user_model()
        .objects.filter(is_active=True)
        .filter(
            Q(is_superuser=True)
            | Q(user_permissions__in=permission)
            | Q(groups__permissions__in=permission)
        )
        .distinct()
        .order_by("first_name", "last_name", get_user_model().USERNAME_FIELD)
    )


@database_call
def agents() -> list[dict[str, Any]]:
    """The people who may take conversations (permission given to them or their group)."""
    return [{"id": user.pk, "name": display_name(user)} for user in _agents_query()]


@database_call
def agent_ids() -> list[int]:
    return list(_agents_query().values_list("pk", flat=True))


@database_call
def is_agent(user_id: int) -> bool:
    return _agents_query().filter(pk=user_id).exists()


def _summary(
    handoff: Handoff, unread: int, last: ChatMessage | None, left_message: bool
) -> dict[str, Any]:
    session = handoff.session
    user = session.user
    return {
        "id": handoff.pk,
        "session_id": str(session.pk),
        "state": handoff.state,
        "reason": handoff.reason,
        "requested_at": _iso(handoff.requested_at),
        "claimed_at": _iso(handoff.claimed_at),
        "ended_at": _iso(handoff.ended_at),
        "agent": {"id": handoff.agent_id, "name": display_name(handoff.agent)}
        if handoff.agent_id
        else None,
        "visitor": {
            "name": display_name(user) if user else "",
            "user_type": session.user_type,
            "locale": session.locale,
        },
        "preview": (last.content[:PREVIEW_LENGTH] if last else ""),
        "unread": unread,
        "left_message": left_message,
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _listed() -> Any:
    return Handoff.objects.select_related("session", "session__user", "agent")


def _read_marks(agent_id: int, handoffs: list[Handoff]) -> dict[int, datetime]:
    keys = {_READ_KEY.format(agent_id, h.pk): h.pk for h in handoffs}
    found = cache.get_many(list(keys))
    return {keys[key]: value for key, value in found.items()}


def _summaries(agent_id: int, handoffs: list[Handoff]) -> list[dict[str, Any]]:
    if not handoffs:
        return []
    marks = _read_marks(agent_id, handoffs)
    since = min(h.requested_at for h in handoffs)
    by_session: dict[Any, list[ChatMessage]] = {}
    messages = ChatMessage.objects.filter(
        session_id__in=[h.session_id for h in handoffs], created_at__gte=since
    ).only("session_id", "role", "content", "created_at")
    for message in messages.order_by("created_at", "id"):
        by_session.setdefault(message.session_id, []).append(message)
    left = set(
        Lead.objects.filter(
            session_id__in=[h.session_id for h in handoffs], source="handoff", created_at__gte=since
        ).values_list("session_id", "created_at")
    )
    rows = []
    for handoff in handoffs:
        mark = marks.get(handoff.pk) or handoff.requested_at
        own = [
            m
            for m in by_session.get(handoff.session_id, [])
            if m.created_at >= handoff.requested_at
        ]
        unread = sum(1 for m in own if m.role == ChatMessage.Role.USER and m.created_at > mark)
        left_message = any(
            session == handoff.session_id and at >= handoff.requested_at for session, at in left
        )
        rows.append(_summary(handoff, unread, own[-1] if own else None, left_message))
    return rows


@database_call
def conversations(agent_id: int) -> list[dict[str, Any]]:
    """The inbox's list for ``agent_id``: waiting (oldest first), active, then recent others."""
    open_ = list(_listed().filter(state__in=OPEN_STATES).order_by("requested_at", "pk"))
    open_.sort(key=lambda h: OPEN_STATES.index(h.state))
    recent = list(
        _listed()
        .exclude(state__in=OPEN_STATES)
        .filter(requested_at__gte=timezone.now() - RECENT)
        .order_by("-requested_at", "-pk")[:MAX_RECENT]
    )
    return _summaries(agent_id, open_ + recent)


@database_call
def held_by(handoff_id: int, agent_id: int) -> bool:
    return Handoff.objects.filter(pk=handoff_id, state="active", agent_id=agent_id).exists()


@database_call
def latest_of_session(session_id: str) -> int | None:
    """The conversation's latest handoff (a message left belongs to it)."""
    return (
        Handoff.objects.filter(session_id=session_id)
        .order_by("-requested_at", "-pk")
        .values_list("pk", flat=True)
        .first()
    )


@database_call
def conversation(agent_id: int, handoff_id: int) -> dict[str, Any] | None:
    """One row of the list, as ``agent_id`` sees it; None if there is no such handoff."""
    handoff = _listed().filter(pk=handoff_id).first()
    return _summaries(agent_id, [handoff])[0] if handoff else None


def message_object(message: ChatMessage) -> dict[str, Any]:
    """A stored message as the visitor protocol shapes it (an agent's with their name)."""
    data = protocol.message_object(StoredMessage.from_model(message))
    if message.role == ChatMessage.Role.AGENT and not (data.get("agent") or {}).get("name"):
        data["agent"] = {"name": display_name(message.agent)}
    return data


def note_object(note: InternalNote) -> dict[str, Any]:
    return {
        "id": note.pk,
        "author": display_name(note.author),
        "content": note.content,
        "created_at": note.created_at.isoformat(),
    }


@database_call
def _details(handoff_id: int) -> tuple[Handoff, list[dict[str, Any]], list, list] | None:
    handoff = _listed().filter(pk=handoff_id).first()
    if handoff is None:
        return None
    latest = (
        ChatMessage.objects.filter(session_id=handoff.session_id)
        .select_related("agent")
        .order_by("-created_at", "-id")[:MAX_TRANSCRIPT]
    )
    transcript = [message_object(m) for m in reversed(list(latest))]
    notes = [
        note_object(n)
        for n in InternalNote.objects.filter(handoff__session_id=handoff.session_id)
        .select_related("author")
        .order_by("created_at", "pk")
    ]
    leads = [
        {
            "name": lead.name,
            "email": lead.email,
            "phone": lead.phone,
            "details": lead.details,
            "created_at": lead.created_at.isoformat(),
        }
        for lead in Lead.objects.filter(session_id=handoff.session_id).order_by("created_at")
    ]
    return handoff, transcript, notes, leads


async def details(handoff_id: int) -> dict[str, Any] | None:
    """The transcript, the visitor's context (the site's context providers), notes, leads."""
    found = await _details(handoff_id)
    if found is None:
        return None
    handoff, transcript, notes, leads = found
    session = handoff.session
    stored = dict(session.context or {})
    request = ContextRequest(
        user=session.user,
        user_id=session.user_id,
        user_type=session.user_type,
        session_id=str(session.pk),
        locale=session.locale,
        page=stored.get("page") or {},
        session_context=stored,
        question="",
    )
    sections = await build_context(request)
    return {
        "handoff_id": handoff.pk,
        "messages": transcript,
        "context": [{"title": s.title, "facts": dict(s.facts)} for s in sections],
        "notes": notes,
        "leads": leads,
    }


@database_call
def add_note(handoff_id: int, author_id: int, content: str) -> dict[str, Any] | None:
    """Store an internal note (never shown to the visitor); None if there is no such handoff."""
    if not Handoff.objects.filter(pk=handoff_id).exists():
        return None
    note = InternalNote.objects.create(handoff_id=handoff_id, author_id=author_id, content=content)
    return note_object(InternalNote.objects.select_related("author").get(pk=note.pk))


@database_call
def canned_replies() -> list[dict[str, Any]]:
    return [
        {"id": reply.pk, "title": reply.title, "text": reply.text, "language": reply.language}
        for reply in CannedReply.objects.order_by("title", "pk")
    ]


async def mark_read(agent_id: int, handoff_id: int) -> None:
    """Everything the visitor wrote so far counts as read by ``agent_id``."""
    key = _READ_KEY.format(agent_id, handoff_id)
    await async_cache.call(cache, "set", key, timezone.now(), int(RECENT.total_seconds()) * 7)
