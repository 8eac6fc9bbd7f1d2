"""``manage.py export_chat_data --user maria`` (or ``--session <id>``): a visitor's data as JSON.

Writes every conversation of the user (or the one conversation), with its
messages and feedback, in the format of
:func:`sophie_chat.data_rights.export_conversations`, to standard output or
``--output FILE``.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from sophie_chat.data_rights import export_conversations
from sophie_chat.management.commands._subjects import (
    add_subject_arguments,
    subject_conversations,
)


class Command(BaseCommand):
    help = "Export all conversations of one user, or one conversation, as JSON."

    def add_arguments(self, parser: CommandParser) -> None:
        add_subject_arguments(parser)
        parser.add_argument("--output", "-o", help="Write to this file instead of standard output.")

    def handle(self, *args: Any, **options: Any) -> None:
        sessions, subject = subject_conversations(options["user"], options["session"])
        text = json.dumps(
            export_conversations(sessions, subject=subject), ensure_ascii=False, indent=2
        )
        if options["output"]:
            with open(options["output"], "w", encoding="utf-8") as file:
                file.write(text + "\n")
        else:
            self.stdout.write(text)
