"""``manage.py delete_chat_data --user maria`` (or ``--session <id>``): erase a visitor's data.

Deletes every conversation of the user (or the one conversation) with its
messages, feedback, analytics, error records, the unanswered questions last
asked in it and the answers it put in the response cache. The user account
itself stays. Asks for confirmation unless ``--no-input``.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from sophie_chat import counts
from sophie_chat.data_rights import delete_conversations
from sophie_chat.management.commands._subjects import (
    add_subject_arguments,
    subject_conversations,
)


class Command(BaseCommand):
    help = "Delete all conversations of one user, or one conversation, and their cached answers."

    def add_arguments(self, parser: CommandParser) -> None:
        add_subject_arguments(parser)
        parser.add_argument(
            "--no-input",
            "--noinput",
            action="store_false",
            dest="interactive",
            help="Do not ask for confirmation.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        sessions, _subject = subject_conversations(options["user"], options["session"])
        count = sessions.count()
        if options["interactive"] and count:
            answer = input(
                ngettext(
                    "Delete %(count)d conversation for good? Type 'yes' to continue: ",
                    "Delete %(count)d conversations for good? Type 'yes' to continue: ",
                    count,
                )
                % {"count": count}
            )
            if answer.strip().lower() != "yes":
                raise CommandError(_("Nothing deleted."))
        deleted = delete_conversations(sessions)
        self.stdout.write(
            self.style.SUCCESS(
                _("Deleted %(conversations)s (%(messages)s) and %(cached)s.")
                % {
                    "conversations": counts.conversations(deleted.conversations),
                    "messages": counts.messages(deleted.messages),
                    "cached": counts.cached_answers(deleted.cached_answers),
                }
            )
        )
