"""Choosing whose conversations a data-rights command acts on."""

from __future__ import annotations

import uuid

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError, CommandParser
from django.db.models import Q, QuerySet
from django.utils.translation import gettext as _

from sophie_chat.models import ChatSession


def add_subject_arguments(parser: CommandParser) -> None:
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument(
        "--user",
        help="The user: their primary key, user name or e-mail address.",
    )
    group.add_argument(
        "--session",
        help="One conversation's id (for an anonymous visitor's request).",
    )


def subject_conversations(
    user: str | None, session: str | None
) -> tuple[QuerySet[ChatSession], dict]:
    """The conversations of ``--user`` or ``--session``, and the subject for the export."""
    if session is not None:
        try:
            session_id = uuid.UUID(session)
        except ValueError:
            raise CommandError(
                _("%(value)r is not a conversation id.") % {"value": session}
            ) from None
        sessions = ChatSession.objects.filter(pk=session_id)
        if not sessions.exists():
            raise CommandError(_("No conversation %(id)s.") % {"id": session_id})
        return sessions, {"session_id": str(session_id)}
    model = get_user_model()
    condition = Q(**{model.USERNAME_FIELD: user})
    email_field = model.get_email_field_name()
    if email_field:
        condition |= Q(**{f"{email_field}__iexact": user})
    if str(user).isdigit():
        condition |= Q(pk=int(user))
    matches = list(model._default_manager.filter(condition)[:2])
    if not matches:
        raise CommandError(_("No user %(user)r.") % {"user": user})
    if len(matches) > 1:
        raise CommandError(
            _("%(user)r matches more than one user; give the primary key.") % {"user": user}
        )
    found = matches[0]
    return ChatSession.objects.filter(user_id=found.pk), {"user_id": found.pk}
