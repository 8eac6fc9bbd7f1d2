"""Retention: expire lapsed conversations, delete those past ``RETENTION_DAYS``.

:func:`cleanup` is what ``manage.py cleanup_old_chat_sessions`` and the
task in :mod:`sophie_chat.tasks` run. It works in batches, and each batch is
claimed with ``SELECT ... FOR UPDATE SKIP LOCKED`` where the database has it
(PostgreSQL, MySQL 8, Oracle, MariaDB 10.6), so several runs at once share
the work instead of colliding; every write repeats its condition, so a
second run finds nothing left to do and a conversation resumed meanwhile is
left alone.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import QuerySet
from django.utils import timezone

from sophie_chat import analytics, conf
from sophie_chat.data_rights import Deleted, delete_conversations
from sophie_chat.models import ChatErrorEvent, ChatMessage, ChatSession

logger = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 500


@dataclass(frozen=True, slots=True)
class CleanupReport:
    """What a cleanup did (or, for a dry run, would do)."""

    expired: int = 0
    deleted_conversations: int = 0
    deleted_messages: int = 0
    deleted_cached_answers: int = 0
    deleted_error_records: int = 0
    frozen_days: int = 0
    dry_run: bool = False
    #: The cutoff used (None: RETENTION_DAYS is None, nothing deleted).
    cutoff: datetime | None = None


def retention_days(days: int | None = None) -> int | None:
    """``days``, or ``SOPHIE_CHAT["RETENTION_DAYS"]``; ValueError when not whole days >= 1."""
    value = conf.get("RETENTION_DAYS") if days is None else days
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ValueError(
            'SOPHIE_CHAT["RETENTION_DAYS"] must be a whole number of days >= 1 or None.'
        )
    return value


def to_expire(now: datetime) -> QuerySet[ChatSession]:
    """Active conversations past their expiry."""
    return ChatSession.objects.filter(status=ChatSession.Status.ACTIVE, expires_at__lte=now)


def past_retention(cutoff: datetime) -> QuerySet[ChatSession]:
    """Conversations whose last activity is before ``cutoff``."""
    return ChatSession.objects.filter(updated_at__lt=cutoff)


def _claim(queryset: QuerySet[ChatSession], batch_size: int) -> list[object]:
    """The next batch of ids; locked, and skipping rows another run holds, where supported."""
    queryset = queryset.order_by("pk")
    if connection.features.has_select_for_update_skip_locked:
        queryset = queryset.select_for_update(skip_locked=True)
    return list(queryset.values_list("pk", flat=True)[:batch_size])


def expire(now: datetime, batch_size: int = DEFAULT_BATCH_SIZE) -> int:
    """Mark active conversations past their expiry as expired; how many were."""
    total = 0
    while True:
        with transaction.atomic():
            ids = _claim(to_expire(now), batch_size)
            if not ids:
                return total
            # update() leaves updated_at (last activity) alone, as it should.
            total += to_expire(now).filter(pk__in=ids).update(status=ChatSession.Status.EXPIRED)


def delete_past(cutoff: datetime, batch_size: int = DEFAULT_BATCH_SIZE) -> Deleted:
    """Delete conversations idle since before ``cutoff``, and what derives from them."""
    total = Deleted()
    while True:
        with transaction.atomic():
            ids = _claim(past_retention(cutoff), batch_size)
            if not ids:
                return total
            total += delete_conversations(past_retention(cutoff).filter(pk__in=ids))


def cleanup(
    *,
    days: int | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    dry_run: bool = False,
    now: datetime | None = None,
) -> CleanupReport:
    """Expire lapsed conversations; delete those idle for more than ``days``.

    ``days`` defaults to ``SOPHIE_CHAT["RETENTION_DAYS"]``; None keeps every
    conversation (only expiring them). Before deleting, the days the deleted
    conversations belong to are frozen into daily analytics, so the dashboard
    keeps their figures; error records not tied to a conversation go after
    the same number of days.
    """
    days = retention_days(days)
    now = now or timezone.now()
    if batch_size < 1:
        raise ValueError("batch_size must be 1 or more")
    cutoff = now - timedelta(days=days) if days is not None else None

    if dry_run:
        report = CleanupReport(
            expired=to_expire(now).count(),
            deleted_conversations=past_retention(cutoff).count() if cutoff else 0,
            deleted_messages=(
                ChatMessage.objects.filter(session__updated_at__lt=cutoff).count() if cutoff else 0
            ),
            dry_run=True,
            cutoff=cutoff,
        )
        return report

    frozen = 0
    deleted = Deleted()
    orphans = 0
    if cutoff is not None:
        frozen = analytics.freeze_days_through(timezone.localdate(cutoff))
        deleted = delete_past(cutoff, batch_size)
        orphans = _delete_orphan_errors(cutoff, batch_size)
    expired = expire(now, batch_size)
    report = CleanupReport(
        expired=expired,
        deleted_conversations=deleted.conversations,
        deleted_messages=deleted.messages,
        deleted_cached_answers=deleted.cached_answers,
        deleted_error_records=orphans,
        frozen_days=frozen,
        cutoff=cutoff,
    )
    logger.info(
        "Retention cleanup done",
        extra={
            "expired": report.expired,
            "deleted_conversations": report.deleted_conversations,
            "deleted_messages": report.deleted_messages,
            "frozen_days": report.frozen_days,
            "retention_days": days,
        },
    )
    return report


def _delete_orphan_errors(cutoff: datetime, batch_size: int) -> int:
    old = ChatErrorEvent.objects.filter(session__isnull=True, created_at__lt=cutoff)
    total = 0
    while True:
        ids = list(old.order_by("pk").values_list("pk", flat=True)[:batch_size])
        if not ids:
            return total
        total += old.filter(pk__in=ids).delete()[0]
