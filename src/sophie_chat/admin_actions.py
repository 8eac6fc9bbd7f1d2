"""Data-rights actions for the conversation admin: export and delete.

"Export ... as JSON" downloads what :func:`sophie_chat.data_rights.export_conversations`
returns; "... of these visitors" widens the selection to every conversation
of the selected conversations' users (an anonymous conversation stands for
itself), which is how staff answer one person's request: search the
conversations by user name or e-mail, tick one, run the action. Deleting,
from an action or the admin's own delete pages, goes through
:func:`sophie_chat.data_rights.delete_conversations`, so the response cache
loses the answers those conversations filled.
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from sophie_chat import counts
from sophie_chat.data_rights import delete_conversations, export_conversations
from sophie_chat.models import ChatSession


def visitors_conversations(selected: QuerySet[ChatSession]) -> QuerySet[ChatSession]:
    """Every conversation of the selected conversations' users, and the selected anonymous ones."""
    user_ids = selected.filter(user__isnull=False).values("user_id")
    anonymous = selected.filter(user__isnull=True).values("pk")
    return ChatSession.objects.filter(Q(user_id__in=user_ids) | Q(pk__in=anonymous))


def json_download(data: dict[str, Any], name: str) -> HttpResponse:
    """``data`` as a JSON file download named ``name-<date>.json``."""
    response = HttpResponse(
        json.dumps(data, ensure_ascii=False, indent=2), content_type="application/json"
    )
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    response["Content-Disposition"] = f'attachment; filename="{name}-{stamp}.json"'
    return response


@admin.action(
    description=gettext_lazy("Export selected conversations as JSON"), permissions=["view"]
)
def export_selected(modeladmin: Any, request: HttpRequest, queryset: QuerySet) -> HttpResponse:
    return json_download(export_conversations(queryset), "sophie-chat-conversations")


@admin.action(
    description=gettext_lazy("Export all conversations of these visitors as JSON"),
    permissions=["view"],
)
def export_visitors(modeladmin: Any, request: HttpRequest, queryset: QuerySet) -> HttpResponse:
    return json_download(
        export_conversations(visitors_conversations(queryset)), "sophie-chat-visitor-data"
    )


@admin.action(
    description=gettext_lazy("Delete all conversations of these visitors"),
    permissions=["delete"],
)
def delete_visitors(
    modeladmin: Any, request: HttpRequest, queryset: QuerySet
) -> TemplateResponse | None:
    sessions = visitors_conversations(queryset)
    if request.POST.get("post") == "yes":
        modeladmin.log_deletions(request, sessions)
        deleted = delete_conversations(sessions)
        modeladmin.message_user(
            request,
            _("Deleted %(conversations)s (%(messages)s) and %(cached)s.")
            % {
                "conversations": counts.conversations(deleted.conversations),
                "messages": counts.messages(deleted.messages),
                "cached": counts.cached_answers(deleted.cached_answers),
            },
            messages.SUCCESS,
        )
        return None
    opts = modeladmin.model._meta
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": _("Delete all conversations of these visitors?"),
        "opts": opts,
        "queryset": queryset,
        "conversations": sessions.count(),
        "users": sorted({str(s.user) for s in sessions.select_related("user") if s.user_id}),
        "anonymous": sessions.filter(user__isnull=True).count(),
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "action": "delete_visitors",
    }
    return TemplateResponse(request, "sophie_chat/admin/delete_visitors.html", context)


class DataRightsAdminMixin:
    """Export and delete actions; deleting also deletes the conversations' cached answers."""

    actions = (export_selected, export_visitors, delete_visitors)

    def delete_model(self, request: HttpRequest, obj: ChatSession) -> None:
        delete_conversations(ChatSession.objects.filter(pk=obj.pk))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        delete_conversations(queryset)
