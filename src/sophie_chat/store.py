"""The database side of conversations.

Each public coroutine here is one unit of work in one call to a database
thread (:func:`sophie_chat.db.database_call`, never one per row), and returns
frozen values rather than model instances, so nothing lazy crosses into async
code. The statements every turn runs are in :mod:`sophie_chat.statements`.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from sophie_chat import conf, metrics, statements
from sophie_chat.db import database_call
from sophie_chat.exceptions import InvalidMessage, SessionClosed, SessionNotFound
from sophie_chat.history import HistoryItem
from sophie_chat.models import (
    ChatAnalytics,
    ChatErrorEvent,
    ChatMessage,
    ChatSession,
    MessageFeedback,
)

logger = logging.getLogger(__name__)


#: A conversation's expiry and last activity are written at most this often.
TOUCH_INTERVAL = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class StoredMessage:
    id: str
    role: str
    content: str
    created_at: datetime
    status: str = ChatMessage.Status.COMPLETE
    client_message_id: str | None = None
    reply_to: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_model(cls, message: ChatMessage) -> StoredMessage:
        return cls(
            id=str(message.id),
            role=message.role,
            content=message.content,
            created_at=message.created_at,
            status=message.status,
            client_message_id=message.client_message_id,
            reply_to=str(message.reply_to_id) if message.reply_to_id else None,
            metadata=dict(message.metadata or {}),
        )


@dataclass(frozen=True, slots=True)
class SessionState:
    id: str
    user_id: int | None
    user_type: str
    status: str
    locale: str
    context: dict[str, Any]


class ResumedSession(NamedTuple):
    """A resumed conversation and its latest messages, oldest first."""

    session: SessionState
    history: list[StoredMessage]


class StoredQuestion(NamedTuple):
    """A visitor's stored message, what came before it, and its answer if it has one."""

    message: StoredMessage
    #: The conversation before the message (empty when it was already answered).
    history: list[HistoryItem]
    #: False when the message was stored before (a re-send).
    new: bool
    #: The stored answer to a re-sent message, to be replayed.
    answer: StoredMessage | None = None


def _state(session: ChatSession) -> SessionState:
    return SessionState(
        id=str(session.id),
        user_id=session.user_id,
        user_type=session.user_type,
        status=session.status,
        locale=session.locale,
        context=dict(session.context or {}),
    )


def _parse_uuid(value: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except (TypeError, ValueError):
        return None


@database_call
def create_session(
    *,
    user_id: int | None,
    user_type: str,
    locale: str,
    context: dict[str, Any],
    client_ip: str | None,
) -> SessionState:
    session = ChatSession(
        user_id=user_id,
        user_type=user_type,
        locale=locale[:16],
        context=context,
        client_ip=client_ip,
    )
    # One commit for both rows: thousands of visitors may arrive in a minute.
    with statements.atomic(ChatSession) as (sql, cursor):
        sql.insert(cursor, session)
        if conf.get("ENABLE_ANALYTICS"):
            sql.insert(cursor, ChatAnalytics(session=session))
    return _state(session)


@database_call
def resume_session(
    *,
    session_id: str | None,
    token_session_id: str | None,
    user_id: int | None,
    user_type: str,
    locale: str,
    context: dict[str, Any] | None,
    client_ip: str | None = None,
) -> ResumedSession:
    """Resume a session its owner asked for, with its latest history.

    A logged-in user resumes their own sessions by id, and adopts an
    anonymous session they hold the token of when it was started from the
    same IP address (the visitor logging in; a token that travelled elsewhere
    does not hand a conversation over). An anonymous visitor needs the
    token, and never gets a session owned by a user. Anything else is
    :class:`SessionNotFound`; a closed or expired one is :class:`SessionClosed`.
    """
    wanted = _parse_uuid(session_id) or _parse_uuid(token_session_id)
    if wanted is None or (session_id and token_session_id and str(wanted) != token_session_id):
        raise SessionNotFound()
    with transaction.atomic():
        session = ChatSession.objects.select_for_update().filter(pk=wanted).first()
        if session is None:
            raise SessionNotFound()
        holds_token = token_session_id == str(session.pk)
        if session.user_id is not None:
            if session.user_id != user_id:
                raise SessionNotFound()
        elif not holds_token or (user_id is not None and session.client_ip != client_ip):
            # Adopted only by whoever started it, logging in from the same address.
            raise SessionNotFound()
        if session.status != ChatSession.Status.ACTIVE:
            raise SessionClosed()
        expired = session.is_expired
        if expired:
            session.status = ChatSession.Status.EXPIRED
            session.save(update_fields=["status"])
    if expired:
        # Raised outside the transaction so that the new status is kept.
        raise SessionClosed()
    with transaction.atomic():
        if session.user_id is None and user_id is not None:
            session.user_id = user_id
            session.user_type = user_type
        if locale:
            session.locale = locale[:16]
        if context is not None:
            session.context = context
        session.touch()
        session.save()
    return ResumedSession(_state(session), _history(session.pk, conf.get("MAX_HISTORY_MESSAGES")))


def _history(session_pk: Any, limit: int) -> list[StoredMessage]:
    rows = list(
        ChatMessage.objects.filter(session_id=session_pk).order_by("-created_at", "-id")[:limit]
    )
    return [StoredMessage.from_model(row) for row in reversed(rows)]


@database_call
def find_by_client_id(session_id: str, client_message_id: str) -> StoredQuestion | None:
    """The stored user message with this client id (a re-send), or None.

    With its answer when it has one; without one (a crash or a refused model
    left it unanswered), with the conversation before it, to answer it now.
    """
    message = ChatMessage.objects.filter(
        session_id=session_id, client_message_id=client_message_id
    ).first()
    return _resent(message) if message is not None else None


def _resent(message: ChatMessage) -> StoredQuestion:
    answer = message.replies.filter(role=ChatMessage.Role.ASSISTANT).order_by("created_at").first()
    if answer is not None:
        return StoredQuestion(
            StoredMessage.from_model(message), [], False, answer=StoredMessage.from_model(answer)
        )
    return StoredQuestion(StoredMessage.from_model(message), _history_before(message), False)


@database_call
def store_user_message(
    session_id: str, content: str, client_message_id: str | None
) -> StoredQuestion:
    """Store a user message; return it with the history before it.

    Idempotent on ``client_message_id``: a duplicate (sent again while the
    first was being stored) returns the stored message as
    :func:`find_by_client_id` does, with ``new`` False.
    """
    try:
        with statements.atomic(ChatMessage) as (sql, cursor):
            now = timezone.now()
            expires_at = now + timedelta(hours=conf.get("SESSION_TIMEOUT_HOURS"))
            touch_before = expires_at - TOUCH_INTERVAL
            # A re-sent client_message_id is found by the unique constraint:
            # no query for it first and no savepoint; the rare duplicate rolls back.
            message = ChatMessage(
                session_id=session_id,
                role=ChatMessage.Role.USER,
                content=content,
                client_message_id=client_message_id,
                created_at=now,
            )
            limit = conf.get("MAX_HISTORY_MESSAGES")
            counted = conf.get("ENABLE_ANALYTICS")
            with statements.pipelined(cursor) as batched:
                if batched:
                    # One round trip: the session's lock and history, the insert and
                    # the count go together; a closed or missing session rolls it all
                    # back below (PostgreSQL checks the session's key at commit).
                    with cursor.db.cursor() as locking, cursor.db.cursor() as reading:
                        sql.send_lock_session(
                            locking, session_id, now=now, touch_before=touch_before
                        )
                        sql.send_history(reading, session_id, limit)
                        sql.insert(cursor, message)
                        if counted:
                            sql.count_question(cursor, session_id)
                        found = sql.locked_session(locking)
                        rows = reading.fetchall()
                else:
                    found = sql.lock_session(
                        cursor, session_id, now=now, touch_before=touch_before
                    )
                    rows = [] if found is None else sql.history(cursor, session_id, limit)
            if found is None:
                raise SessionNotFound()
            status, expired, stale = found
            if status != ChatSession.Status.ACTIVE or expired:
                raise SessionClosed()
            # The history was read before the insert: it holds the messages before it.
            prior = [HistoryItem(role=role, content=text) for role, text in reversed(rows)]
            if not batched:
                sql.insert(cursor, message)
                if counted:
                    sql.count_question(cursor, session_id)
            # An expiry pushed less than a minute ago stands: one write per turn less.
            if stale:
                sql.touch_session(cursor, session_id, expires_at, now)
    except IntegrityError:
        existing = (
            ChatMessage.objects.filter(
                session_id=session_id, client_message_id=client_message_id
            ).first()
            if client_message_id
            else None
        )
        if existing is None:
            raise
        return _resent(existing)
    return StoredQuestion(StoredMessage.from_model(message), prior, True)


def _history_before(message: ChatMessage) -> list[HistoryItem]:
    """The conversation before a stored message (for answering a re-sent question)."""
    rows = (
        ChatMessage.objects.filter(session_id=message.session_id, created_at__lt=message.created_at)
        .exclude(status=ChatMessage.Status.FAILED)
        .order_by("-created_at", "-id")[: conf.get("MAX_HISTORY_MESSAGES")]
    )
    return [HistoryItem(role=m.role, content=m.content) for m in reversed(rows)]


@dataclass(frozen=True, slots=True)
class AnswerRecord:
    """Everything known about an answer when it is stored."""

    id: str
    session_id: str
    reply_to: str
    content: str
    status: str
    metadata: dict[str, Any]
    first_token_ms: int | None
    total_ms: int
    prompt_tokens: int | None
    completion_tokens: int | None
    #: The response cache key this answer fills ("" when it is not cached).
    cache_key: str = ""


@database_call
def store_answer(record: AnswerRecord) -> StoredMessage:
    """Store an assistant answer and count it in the session's analytics."""
    with statements.atomic(ChatMessage) as (sql, cursor), statements.pipelined(cursor):
        message = ChatMessage(
            id=record.id,
            session_id=record.session_id,
            role=ChatMessage.Role.ASSISTANT,
            reply_to_id=record.reply_to,
            content=record.content,
            status=record.status,
            metadata=record.metadata,
            first_token_ms=record.first_token_ms,
            total_ms=record.total_ms,
            prompt_tokens=record.prompt_tokens,
            completion_tokens=record.completion_tokens,
            cache_key=record.cache_key,
        )
        sql.insert(cursor, message)
        if conf.get("ENABLE_ANALYTICS"):
            meta = record.metadata
            sql.count_answer(
                cursor,
                record.session_id,
                {
                    "answers": 1,
                    "cache_hits": 1 if meta.get("cached") else 0,
                    "fallbacks": 1 if meta.get("fallback") else 0,
                    "interrupted": 1 if record.status == ChatMessage.Status.INTERRUPTED else 0,
                    "prompt_tokens": record.prompt_tokens or 0,
                    "completion_tokens": record.completion_tokens or 0,
                    "total_first_token_ms": record.first_token_ms or 0,
                    "total_response_ms": record.total_ms,
                },
            )
    metrics.answer_stored(
        status=record.status,
        metadata=record.metadata,
        first_token_ms=record.first_token_ms,
        total_ms=record.total_ms,
        prompt_tokens=record.prompt_tokens,
        completion_tokens=record.completion_tokens,
    )
    return StoredMessage.from_model(message)


@database_call
def record_error(session_id: str | None, code: str) -> None:
    """Record that an error frame with ``code`` was sent (for the analytics dashboard).

    Never raises: failing to count an error must not become another error.
    """
    if not conf.get("ENABLE_ANALYTICS"):
        return
    try:
        ChatErrorEvent.objects.create(session_id=session_id, code=code[:32])
    except Exception:
        logger.warning("Could not record an error sent", exc_info=True, extra={"code": code})


@database_call
def count_event(session_id: str, counter: str) -> None:
    """Add one to an analytics counter (``rate_limited`` or ``errors``)."""
    if counter not in ("rate_limited", "errors") or not conf.get("ENABLE_ANALYTICS"):
        return
    ChatAnalytics.objects.filter(session_id=session_id).update(**{counter: F(counter) + 1})


@database_call
def store_feedback(session_id: str, message_id: str, rating: str, comment: str) -> None:
    """Rate an assistant answer of this session (re-rating replaces the rating)."""
    pk = _parse_uuid(message_id)
    message = (
        ChatMessage.objects.filter(
            pk=pk, session_id=session_id, role=ChatMessage.Role.ASSISTANT
        ).first()
        if pk
        else None
    )
    if message is None:
        raise InvalidMessage(reply_to=message_id)
    with transaction.atomic():
        previous = (
            MessageFeedback.objects.filter(message=message).values_list("rating", flat=True).first()
        )
        MessageFeedback.objects.update_or_create(
            message=message, defaults={"rating": rating, "comment": comment}
        )
        if conf.get("ENABLE_ANALYTICS") and previous != rating:
            changes = {f"thumbs_{rating}": F(f"thumbs_{rating}") + 1}
            if previous:
                changes[f"thumbs_{previous}"] = F(f"thumbs_{previous}") - 1
            ChatAnalytics.objects.filter(session_id=session_id).update(**changes)


@database_call
def rate_session(session_id: str, score: int, comment: str) -> None:
    ChatSession.objects.filter(pk=session_id).update(
        satisfaction_score=score, satisfaction_comment=comment, updated_at=timezone.now()
    )


@database_call
def close_session(session_id: str) -> None:
    ChatSession.objects.filter(pk=session_id, status=ChatSession.Status.ACTIVE).update(
        status=ChatSession.Status.CLOSED, closed_at=timezone.now(), updated_at=timezone.now()
    )
