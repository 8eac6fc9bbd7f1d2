"""The database side of tool calls: their records, and confirmations decided once.

Each coroutine is one unit of work in a database thread
(:func:`~sophie_chat.db.database_call`). A confirmation is a
:class:`~sophie_chat.models.ToolCall` row whose ``confirmation`` is
``pending``; :func:`decide` and :func:`expire` change it with one
conditional UPDATE each, so exactly one answer (or the expiry) wins, however
many tabs, processes and servers answer at once.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Q
from django.utils import timezone

from sophie_chat.db import database_call
from sophie_chat.exceptions import ConfirmationExpired, ConfirmationNotFound
from sophie_chat.models import ChatSession, ToolCall

PENDING = ToolCall.Confirmation.PENDING


@dataclass(frozen=True, slots=True)
class OpenConfirmation:
    """A confirmation waiting for the visitor (re-sent to a tab that reconnects)."""

    confirmation_id: str
    call_id: str
    tool: str
    summary: str
    expires_at: datetime


@database_call
def start_call(
    *,
    session_id: str,
    answer_id: str,
    call_id: str,
    name: str,
    arguments: dict[str, Any],
    status: str,
    error: str = "",
    summary: str = "",
    expires_at: datetime | None = None,
) -> str:
    """Record a call as it starts (``pending`` with ``expires_at``: it waits for the visitor)."""
    call = ToolCall.objects.create(
        session_id=session_id,
        answer_id=answer_id,
        call_id=call_id[:100],
        name=name[:64],
        arguments=arguments,
        status=status,
        error=error[:2000],
        summary=summary if expires_at else "",
        expires_at=expires_at,
        confirmation=PENDING if expires_at else ToolCall.Confirmation.NONE,
    )
    return str(call.pk)


@database_call
def finish_call(record_id: str, *, status: str, error: str = "", duration_ms: int | None) -> None:
    ToolCall.objects.filter(pk=record_id).update(
        status=status, error=error[:2000], duration_ms=duration_ms
    )


@database_call
def decide(confirmation_id: str, *, session_id: str, user_id: int | None, accept: bool) -> str:
    """The visitor's answer; returns the outcome (``accepted`` or ``declined``).

    Raises :class:`ConfirmationNotFound` (unknown, decided, another
    conversation's, or given by someone other than the conversation's user)
    or :class:`ConfirmationExpired`.
    """
    pk = _uuid(confirmation_id)
    if pk is None:
        raise ConfirmationNotFound()
    # A logged-in visitor's conversation is answered by that user only; an
    # anonymous one by the connection bound to it (session_id).
    owner = {"user_id": user_id} if user_id is not None else {"user__isnull": True}
    if not ChatSession.objects.filter(pk=session_id, **owner).exists():
        raise ConfirmationNotFound()
    now = timezone.now()
    outcome = ToolCall.Confirmation.ACCEPTED if accept else ToolCall.Confirmation.DECLINED
    # Conditions on the row itself only (no join): PostgreSQL re-checks them
    # after waiting for a concurrent UPDATE of the row, so one answer wins.
    won = ToolCall.objects.filter(
        pk=pk, session_id=session_id, confirmation=PENDING, expires_at__gt=now
    ).update(
        confirmation=outcome,
        status=ToolCall.Status.RUNNING if accept else ToolCall.Status.CANCELLED,
        decided_at=now,
        confirmed_by_id=user_id,
        summary="",
    )
    if won:
        return str(outcome)
    expired = ToolCall.objects.filter(
        Q(confirmation=ToolCall.Confirmation.EXPIRED)
        | Q(confirmation=PENDING, expires_at__lte=now),
        pk=pk,
        session_id=session_id,
    ).exists()
    raise ConfirmationExpired() if expired else ConfirmationNotFound()


@database_call
def expire(confirmation_id: str) -> str:
    """Expire a confirmation nobody answered; returns its outcome, whoever decided it."""
    ToolCall.objects.filter(pk=confirmation_id, confirmation=PENDING).update(
        confirmation=ToolCall.Confirmation.EXPIRED,
        status=ToolCall.Status.CANCELLED,
        decided_at=timezone.now(),
        summary="",
    )
    return _outcome(confirmation_id)


@database_call
def outcome(confirmation_id: str) -> str:
    """``pending``, ``accepted``, ``declined`` or ``expired``."""
    return _outcome(confirmation_id)


def _outcome(confirmation_id: str) -> str:
    found = ToolCall.objects.filter(pk=confirmation_id).values_list("confirmation", flat=True)
    return next(iter(found), ToolCall.Confirmation.EXPIRED)


@database_call
def open_confirmations(session_id: str) -> list[OpenConfirmation]:
    """The confirmations of a conversation still waiting for the visitor, oldest first."""
    calls = ToolCall.objects.filter(
        session_id=session_id, confirmation=PENDING, expires_at__gt=timezone.now()
    ).order_by("created_at")
    return [
        OpenConfirmation(str(call.pk), call.call_id, call.name, call.summary, call.expires_at)
        for call in calls
    ]


def _uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None
