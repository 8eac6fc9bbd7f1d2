"""A visitor's data rights: export their conversations, or delete them.

For a host's own "download my data" and "delete my data" views::

    from sophie_chat.data_rights import delete_user_data, export_user_data

    @login_required
    def my_chats(request):
        return JsonResponse(export_user_data(request.user))

Each of these functions acts on the conversations of the one owner it is
given (a logged-in user, or the anonymous visitor holding a resume token)
and raises :class:`~django.core.exceptions.PermissionDenied` for anyone
else, so a view that passes ``request.user`` can never reach another
visitor's conversations. Staff act on any conversation through the admin
actions and the ``export_chat_data`` / ``delete_chat_data`` commands, which
use :func:`export_conversations` and :func:`delete_conversations`.

Deleting a conversation deletes its messages, feedback, analytics, tool
calls and error records, its handoffs to a person and the agents' messages
(docs/handoff.md), the leads left in it (docs/leads.md), the
unanswered questions last asked in it (their wording is the visitor's), and
the answers it put in the response cache.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core.cache import caches
from django.core.exceptions import PermissionDenied
from django.db import DEFAULT_DB_ALIAS, transaction
from django.db.models import QuerySet
from django.dispatch import receiver
from django.utils import timezone

from sophie_chat import conf
from sophie_chat.models import (
    ChatMessage,
    ChatSession,
    Handoff,
    Lead,
    MessageFeedback,
    ToolCall,
    UnansweredQuestion,
)
from sophie_chat.security import session_id_from_token
from sophie_chat.signals import user_conversations_collected

logger = logging.getLogger(__name__)

EXPORT_FORMAT = "sophie-chat-export"
EXPORT_VERSION = 1

# Ids per IN (...) clause: well under every database's limit on parameters.
_CHUNK = 500


@dataclass(frozen=True, slots=True)
class Deleted:
    """What a deletion removed."""

    conversations: int = 0
    messages: int = 0
    cached_answers: int = 0

    def __add__(self, other: Deleted) -> Deleted:
        return Deleted(
            self.conversations + other.conversations,
            self.messages + other.messages,
            self.cached_answers + other.cached_answers,
        )


# -- whose conversations ---------------------------------------------------------


def user_conversations(user: Any) -> QuerySet[ChatSession]:
    """Every conversation of a logged-in user.

    Raises ``PermissionDenied`` for an anonymous user: anonymous visitors
    prove ownership of one conversation with its resume token instead.
    """
    if user is None or not getattr(user, "is_authenticated", False) or user.pk is None:
        raise PermissionDenied("Only a logged-in user has conversations by user.")
    return ChatSession.objects.filter(user_id=user.pk)


def visitor_conversation(resume_token: str) -> QuerySet[ChatSession]:
    """The anonymous conversation a resume token was issued for.

    Raises ``PermissionDenied`` when the token is not genuine. A conversation
    a user has since adopted (by logging in) is theirs, not the token's.
    """
    session_id = session_id_from_token(resume_token) if isinstance(resume_token, str) else None
    if session_id is None:
        raise PermissionDenied("This resume token is not valid.")
    return ChatSession.objects.filter(pk=session_id, user__isnull=True)


# -- the host's functions ----------------------------------------------------------


def export_user_data(user: Any) -> dict[str, Any]:
    """All of a logged-in user's conversations as a JSON-serializable dict."""
    return export_conversations(user_conversations(user), subject={"user_id": user.pk})


def delete_user_data(user: Any) -> Deleted:
    """Delete all of a logged-in user's conversations (the user stays)."""
    return delete_conversations(user_conversations(user))


def export_visitor_data(resume_token: str) -> dict[str, Any]:
    """An anonymous visitor's conversation, proven by its resume token, as a dict."""
    sessions = visitor_conversation(resume_token)
    return export_conversations(
        sessions, subject={"session_id": session_id_from_token(resume_token)}
    )


def delete_visitor_data(resume_token: str) -> Deleted:
    """Delete an anonymous visitor's conversation, proven by its resume token."""
    return delete_conversations(visitor_conversation(resume_token))


# -- export --------------------------------------------------------------------------


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _message(message: ChatMessage, feedback: MessageFeedback | None) -> dict[str, Any]:
    return {
        "id": str(message.id),
        "role": message.role,
        "content": message.content,
        "created_at": _iso(message.created_at),
        "status": message.status,
        "client_message_id": message.client_message_id,
        "reply_to": str(message.reply_to_id) if message.reply_to_id else None,
        "metadata": message.metadata or {},
        "feedback": (
            {
                "rating": feedback.rating,
                "comment": feedback.comment,
                "created_at": _iso(feedback.created_at),
            }
            if feedback is not None
            else None
        ),
    }


def _lead(lead: Lead) -> dict[str, Any]:
    return {
        "id": lead.pk,
        "created_at": _iso(lead.created_at),
        "service": lead.service,
        "neighbourhood": lead.neighbourhood,
        "preferred_date": lead.preferred_date.isoformat() if lead.preferred_date else None,
        "name": lead.name,
        "phone": lead.phone,
        "email": lead.email,
        "details": lead.details,
        "source": lead.source,
    }


def _handoff(handoff: Handoff) -> dict[str, Any]:
    return {
        "id": handoff.pk,
        "state": handoff.state,
        "reason": handoff.reason,
        "requested_at": _iso(handoff.requested_at),
        "claimed_at": _iso(handoff.claimed_at),
        "ended_at": _iso(handoff.ended_at),
        "satisfaction_score": handoff.satisfaction_score,
        # What the agents noted about the visitor is theirs to see; who wrote it is not.
        "notes": [
            {"content": note.content, "created_at": _iso(note.created_at)}
            for note in handoff.notes.order_by("created_at", "pk")
        ],
    }


def _tool_call(call: ToolCall) -> dict[str, Any]:
    return {
        "id": str(call.id),
        "answer_id": str(call.answer_id) if call.answer_id else None,
        "name": call.name,
        "arguments": call.arguments or {},
        "status": call.status,
        "error": call.error,
        "duration_ms": call.duration_ms,
        "confirmation": call.confirmation,
        "confirmed_by": call.confirmed_by_id,
        "decided_at": _iso(call.decided_at),
        "created_at": _iso(call.created_at),
    }


def _conversation(
    session: ChatSession, messages: list[dict[str, Any]], tool_calls: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "id": str(session.id),
        "user_id": session.user_id,
        "user_type": session.user_type,
        "status": session.status,
        "locale": session.locale,
        "client_ip": session.client_ip,
        "context": session.context or {},
        "created_at": _iso(session.created_at),
        "last_activity_at": _iso(session.updated_at),
        "expires_at": _iso(session.expires_at),
        "closed_at": _iso(session.closed_at),
        "satisfaction": (
            {"score": session.satisfaction_score, "comment": session.satisfaction_comment}
            if session.satisfaction_score is not None
            else None
        ),
        "messages": messages,
        "tool_calls": tool_calls,
    }


def export_conversations(
    sessions: QuerySet[ChatSession], *, subject: dict[str, Any] | None = None
) -> dict[str, Any]:
    """These conversations, oldest first, each with its messages and their feedback.

    The result holds only JSON types (dates as ISO 8601 text): ``json.dumps``
    or ``JsonResponse`` take it as it is. Its shape is documented in
    ``docs/data-rights.md`` and versioned by ``format`` and ``version``.
    """
    conversations = []
    for session in sessions.order_by("created_at", "pk"):
        rows = list(session.messages.order_by("created_at", "id"))
        feedback = {
            f.message_id: f for f in MessageFeedback.objects.filter(message__session=session)
        }
        calls = [_tool_call(call) for call in session.tool_calls.order_by("created_at", "pk")]
        conversation = _conversation(
            session, [_message(m, feedback.get(m.id)) for m in rows], calls
        )
        conversation["leads"] = [_lead(lead) for lead in session.leads.order_by("created_at", "pk")]
        # Agents' messages are among the messages (role "agent", their name in metadata).
        handoffs = session.handoffs.order_by("requested_at", "pk")
        conversation["handoffs"] = [_handoff(handoff) for handoff in handoffs]
        conversations.append(conversation)
    return {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "exported_at": timezone.now().isoformat(),
        "subject": subject or {},
        "conversations": conversations,
    }


# -- delete --------------------------------------------------------------------------


def _chunks(ids: list[Any]) -> Iterable[list[Any]]:
    for start in range(0, len(ids), _CHUNK):
        yield ids[start : start + _CHUNK]


def _cached_answer_keys(sessions: Any, using: str) -> list[str]:
    return list(
        ChatMessage.objects.using(using)
        .filter(session__in=sessions)
        .exclude(cache_key="")
        .values_list("cache_key", flat=True)
        .distinct()
    )


def _purge(keys: list[str]) -> None:
    if not keys:
        return
    alias = conf.get("RESPONSE_CACHE").get("CACHE_ALIAS", "default")
    try:
        caches[alias].delete_many(keys)
    except Exception:
        logger.warning(
            "Cached answers of deleted conversations could not be deleted",
            exc_info=True,
            extra={"cache_alias": alias, "keys": len(keys)},
        )


def purge_cached_answers_on_commit(sessions: Any, *, using: str = DEFAULT_DB_ALIAS) -> int:
    """Delete, once the transaction commits, the response cache entries these
    conversations' answers filled. Returns how many keys that is."""
    keys = _cached_answer_keys(sessions, using)
    if keys:
        transaction.on_commit(lambda: _purge(keys), using=using)
    return len(keys)


def delete_conversations(sessions: QuerySet[ChatSession]) -> Deleted:
    """Delete these conversations and everything derived from them (see module docstring).

    Safe to run while other processes delete too: rows already gone are
    simply not counted.
    """
    ids = list(sessions.values_list("pk", flat=True))
    total = Deleted()
    for chunk in _chunks(ids):
        with transaction.atomic():
            cached = purge_cached_answers_on_commit(chunk)
            UnansweredQuestion.objects.filter(last_session_id__in=chunk).delete()
            _count, per_model = ChatSession.objects.filter(pk__in=chunk).delete()
        total += Deleted(
            conversations=per_model.get(ChatSession._meta.label, 0),
            messages=per_model.get(ChatMessage._meta.label, 0),
            cached_answers=cached,
        )
    if total.conversations:
        logger.info(
            "Conversations deleted",
            extra={
                "conversations": total.conversations,
                "messages": total.messages,
                "cached_answers": total.cached_answers,
            },
        )
    return total


@receiver(user_conversations_collected)
def collect_user_conversations(*, collector: Any, sessions: Any, using: str, **kwargs: Any) -> None:
    """For ``ON_USER_DELETE = "delete"``: what a deleted user's conversations take with them.

    Received while Django collects what deleting the user deletes (sent by
    :func:`sophie_chat.models.on_user_delete`, and also while the admin lists
    it on its delete confirmation page: then nothing is purged). Connected
    when the app is ready.
    """
    if not _is_preview(collector):
        purge_cached_answers_on_commit(sessions, using=using)
    collector.collect(
        UnansweredQuestion.objects.using(using).filter(last_session__in=sessions),
        fail_on_restricted=False,
    )


def _is_preview(collector: Any) -> bool:
    try:
        from django.contrib.admin.utils import NestedObjects
    except ImportError:  # pragma: no cover - the admin is optional
        return False
    return isinstance(collector, NestedObjects)
