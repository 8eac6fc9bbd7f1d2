"""``manage.py cleanup_old_chat_sessions``: expire and delete old conversations.

Deletes conversations (with their messages, feedback, analytics and the
answers they put in the response cache) whose last activity is older than
``--days`` (default ``SOPHIE_CHAT["RETENTION_DAYS"]``), then marks active
conversations past their ``expires_at`` as expired. The work is done by
:func:`sophie_chat.retention.cleanup`: in batches, each write re-checking its
condition, so it can run from cron on several machines at once and a second
run finds nothing left to do.
"""

from __future__ import annotations

import argparse
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.translation import gettext as _

from sophie_chat import counts, retention


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
            default=retention.DEFAULT_BATCH_SIZE,
            help="Conversations per delete or update statement (default 500).",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Count what would be expired and deleted; change nothing.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            report = retention.cleanup(
                days=options["days"],
                batch_size=options["batch_size"],
                dry_run=options["dry_run"],
            )
        except ValueError as exc:
            raise CommandError(
                _('SOPHIE_CHAT["RETENTION_DAYS"] must be a whole number of days >= 1 or None.')
            ) from exc
        if report.cutoff is None:
            self.stdout.write(
                _("RETENTION_DAYS is None: conversations are kept; only expiring them.")
            )
        self.report(report)

    def report(self, report: retention.CleanupReport) -> None:
        values = {
            "sessions": counts.conversations(report.deleted_conversations),
            "messages": counts.messages(report.deleted_messages),
            "expired": counts.conversations(report.expired),
        }
        if report.dry_run:
            self.stdout.write(
                _(
                    "Dry run: would delete %(sessions)s (%(messages)s) and mark %(expired)s "
                    "as expired. Nothing was changed."
                )
                % values
            )
            return
        self.stdout.write(
            self.style.SUCCESS(
                _("Deleted %(sessions)s (%(messages)s); marked %(expired)s as expired.") % values
            )
        )
        if report.frozen_days or report.deleted_cached_answers or report.deleted_error_records:
            self.stdout.write(
                _(
                    "Kept the figures of %(days)s for the analytics dashboard; deleted "
                    "%(cached)s and %(errors)s."
                )
                % {
                    "days": counts.days(report.frozen_days),
                    "cached": counts.cached_answers(report.deleted_cached_answers),
                    "errors": counts.error_records(report.deleted_error_records),
                }
            )
