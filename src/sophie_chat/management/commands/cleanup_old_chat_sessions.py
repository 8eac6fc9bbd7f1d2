"""``manage.py cleanup_old_chat_sessions``: expire and delete old conversations.

Deletes conversations (with their messages, feedback and analytics) whose
last activity is older than ``--days`` (default
``SOPHIE_CHAT["RETENTION_DAYS"]``), then marks active conversations past
their ``expires_at`` as expired. It works in batches of ids, re-checking the
condition in each write, so it can run from cron on several machines at once
and a second run finds nothing left to do.
"""

from __future__ import annotations

import argparse
from datetime import datetime, timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from sophie_chat import conf
from sophie_chat.models import ChatMessage, ChatSession


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, not {value!r}")
    return number


class Command(BaseCommand):
    help = (
        "Delete conversations with no activity for --days (default: "
        'SOPHIE_CHAT["RETENTION_DAYS"]) and mark active conversations past their expiry '
        "as expired."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--days",
            type=_positive_int,
            help="Delete conversations whose last activity is older than this many days.",
        )
        parser.add_argument(
            "--batch-size",
            type=_positive_int,
            default=500,
            help="Conversations per delete or update statement (default 500).",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Count what would be expired and deleted; change nothing.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        days = options["days"]
        if days is None:
            days = conf.get("RETENTION_DAYS")
        if days is not None and (isinstance(days, bool) or not isinstance(days, int) or days < 1):
            raise CommandError(
                _('SOPHIE_CHAT["RETENTION_DAYS"] must be a whole number of days >= 1 or None.')
            )
        batch_size = options["batch_size"]
        now = timezone.now()

        if days is None:
            deleted_sessions = deleted_messages = 0
            self.stdout.write(
                _("RETENTION_DAYS is None: conversations are kept; only expiring them.")
            )
        else:
            cutoff = now - timedelta(days=days)
            if options["dry_run"]:
                deleted_sessions = ChatSession.objects.filter(updated_at__lt=cutoff).count()
                deleted_messages = ChatMessage.objects.filter(
                    session__updated_at__lt=cutoff
                ).count()
            else:
                deleted_sessions, deleted_messages = self.delete_old(cutoff, batch_size)

        if options["dry_run"]:
            expired = self.to_expire(now).count()
        else:
            expired = self.expire(now, batch_size)

        self.report(expired, deleted_sessions, deleted_messages, dry_run=options["dry_run"])

    @staticmethod
    def to_expire(now: datetime) -> QuerySet[ChatSession]:
        return ChatSession.objects.filter(status=ChatSession.Status.ACTIVE, expires_at__lte=now)

    def expire(self, now: datetime, batch_size: int) -> int:
        total = 0
        while True:
            ids = list(self.to_expire(now).order_by("pk").values_list("pk", flat=True)[:batch_size])
            if not ids:
                return total
            # The filter is repeated so a concurrent run or a resumed session is not clobbered;
            # update() leaves updated_at (last activity) alone, as it should.
            total += (
                self.to_expire(now).filter(pk__in=ids).update(status=ChatSession.Status.EXPIRED)
            )

    def delete_old(self, cutoff: datetime, batch_size: int) -> tuple[int, int]:
        sessions = messages = 0
        old = ChatSession.objects.filter(updated_at__lt=cutoff)
        while True:
            ids = list(old.order_by("pk").values_list("pk", flat=True)[:batch_size])
            if not ids:
                return sessions, messages
            _total, per_model = old.filter(pk__in=ids).delete()
            sessions += per_model.get(ChatSession._meta.label, 0)
            messages += per_model.get(ChatMessage._meta.label, 0)

    def report(self, expired: int, sessions: int, messages: int, *, dry_run: bool) -> None:
        values = {"sessions": sessions, "messages": messages, "expired": expired}
        if dry_run:
            self.stdout.write(
                _(
                    "Dry run: would delete %(sessions)d conversations (%(messages)d messages) "
                    "and mark %(expired)d conversations as expired. Nothing was changed."
                )
                % values
            )
            return
        self.stdout.write(
            self.style.SUCCESS(
                _(
                    "Deleted %(sessions)d conversations (%(messages)d messages); "
                    "marked %(expired)d conversations as expired."
                )
                % values
            )
        )
