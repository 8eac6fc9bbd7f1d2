"""The Django admin: conversations and their feedback are records (read-only,
deletable); the knowledge base is content (editable)."""

from __future__ import annotations

import csv
import json
import uuid
from typing import Any

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.core.exceptions import FieldDoesNotExist
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.http import urlencode
from django.utils.text import Truncator
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from django.utils.translation import override as translation_override

from sophie_chat.admin_actions import DataRightsAdminMixin
from sophie_chat.inbox import admin as inbox_admin  # noqa: F401  (registers its models)
from sophie_chat.knowledge.database import knowledge_changed
from sophie_chat.models import (
    ChatAnalytics,
    ChatMessage,
    ChatSession,
    Handoff,
    KnowledgeBaseEntry,
    Lead,
    MessageFeedback,
    TokenUsage,
    ToolCall,
    UnansweredQuestion,
)


class ReadOnlyAdminMixin:
    """Every field read-only; nothing can be added or changed. Deleting follows
    the user's delete permission (retention requests, clean-up)."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ChatMessageInline(admin.TabularInline):
    model = ChatMessage
    verbose_name = _("message")
    verbose_name_plural = _("transcript")
    fields = readonly_fields = (
        "created_at",
        "role",
        "agent",
        "content",
        "status",
        "first_token_ms",
        "total_ms",
        "prompt_tokens",
        "completion_tokens",
        "metadata",
    )
    ordering = ("created_at", "id")
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def _as_uuid(term: str) -> uuid.UUID | None:
    """A search term that is a conversation id, as a UUID; None for any other term."""
    try:
        return uuid.UUID(term.strip().strip("'\""))
    except ValueError:
        return None


def _user_search_fields() -> list[str]:
    """The user's login and e-mail fields, whatever the user model calls them."""
    user_model = get_user_model()
    names = [user_model.USERNAME_FIELD, user_model.get_email_field_name()]
    fields = []
    for name in dict.fromkeys(names):
        try:
            user_model._meta.get_field(name)
        except FieldDoesNotExist:
            continue
        fields.append(f"user__{name}")
    return fields


@admin.register(ChatSession)
class ChatSessionAdmin(DataRightsAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("id", "user", "user_type", "status", "locale", "created_at", "message_count")
    list_filter = ("status", "user_type", "locale", "created_at")
    list_select_related = ("user",)
    date_hierarchy = "created_at"
    inlines = (ChatMessageInline,)

    def get_search_fields(self, request: HttpRequest) -> list[str]:
        return [*_user_search_fields(), "messages__content"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [f.name for f in self.model._meta.concrete_fields]

    def get_queryset(self, request: HttpRequest) -> QuerySet[ChatSession]:
        return super().get_queryset(request).annotate(message_count=Count("messages"))

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet, search_term: str
    ) -> tuple[QuerySet, bool]:
        if not search_term.strip():
            return queryset, False
        # Searched as a subquery: a join to the messages here would multiply message_count.
        matches, _duplicates = super().get_search_results(
            request, ChatSession.objects.all(), search_term
        )
        condition = Q(pk__in=matches.values("pk"))
        session_id = _as_uuid(search_term)
        if session_id is not None:
            condition |= Q(pk=session_id)
        return queryset.filter(condition), False

    @admin.display(description=_("messages"), ordering="message_count")
    def message_count(self, obj: ChatSession) -> int:
        return obj.message_count


@admin.register(ChatMessage)
class ChatMessageAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "short_content",
        "role",
        "agent",
        "status",
        "session",
        "created_at",
        "total_ms",
    )
    list_filter = ("role", "status", "created_at")
    list_select_related = ("session", "agent")
    search_fields = ("content",)
    date_hierarchy = "created_at"

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [f.name for f in self.model._meta.concrete_fields]

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet, search_term: str
    ) -> tuple[QuerySet, bool]:
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        session_id = _as_uuid(search_term)
        if session_id is not None:
            results = results | queryset.filter(session_id=session_id)
        return results, may_have_duplicates

    @admin.display(description=_("content"))
    def short_content(self, obj: ChatMessage) -> str:
        return Truncator(obj.content).chars(80)


def log_field_change(
    modeladmin: admin.ModelAdmin, request: HttpRequest, objects: list[Any], field: str
) -> None:
    """One admin history entry per changed object, as the change form would write it."""
    with translation_override(None):
        label = str(modeladmin.model._meta.get_field(field).verbose_name)
    for obj in objects:
        modeladmin.log_change(request, obj, [{"changed": {"fields": [label]}}])


@admin.register(KnowledgeBaseEntry)
class KnowledgeBaseEntryAdmin(admin.ModelAdmin):
    list_display = ("question", "category", "locale", "active", "priority", "updated_at")
    list_editable = ("active", "priority")
    list_filter = ("category", "locale", "active")
    search_fields = ("question", "answer", "keywords")
    readonly_fields = ("created_at", "updated_at")
    actions = ("activate", "deactivate")
    fieldsets = (
        (None, {"fields": ("question", "answer", "locale", "category", "keywords", "url")}),
        (_("Search"), {"fields": ("active", "priority")}),
        (_("History"), {"fields": ("created_at", "updated_at")}),
    )

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet, search_term: str
    ) -> tuple[QuerySet, bool]:
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        # JSON text may hold accented keywords as \u escapes (SQLite): match those too.
        escaped = json.dumps(search_term.strip())[1:-1]
        if escaped != search_term.strip() and escaped:
            results = results | queryset.filter(keywords__icontains=escaped)
        return results, may_have_duplicates

    @admin.action(description=_("Activate selected entries"), permissions=["change"])
    def activate(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._set_active(request, queryset, active=True)

    @admin.action(description=_("Deactivate selected entries"), permissions=["change"])
    def deactivate(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._set_active(request, queryset, active=False)

    def _set_active(self, request: HttpRequest, queryset: QuerySet, *, active: bool) -> None:
        changing = list(queryset.exclude(active=active))
        # update() skips auto_now: set updated_at so the knowledge version changes.
        count = queryset.filter(pk__in=[entry.pk for entry in changing]).update(
            active=active, updated_at=timezone.now()
        )
        # update() sends no signal: this process's searches see it at once all the same.
        knowledge_changed(queryset.db)
        log_field_change(self, request, changing, "active")
        if active:
            text = ngettext("%(count)d entry activated.", "%(count)d entries activated.", count)
        else:
            text = ngettext("%(count)d entry deactivated.", "%(count)d entries deactivated.", count)
        self.message_user(request, text % {"count": count}, messages.SUCCESS)


@admin.register(MessageFeedback)
class MessageFeedbackAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("message", "rating", "short_comment", "created_at")
    list_filter = ("rating", "created_at")
    list_select_related = ("message",)
    search_fields = ("comment", "message__content")
    date_hierarchy = "created_at"

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [f.name for f in self.model._meta.concrete_fields]

    @admin.display(description=_("comment"))
    def short_comment(self, obj: MessageFeedback) -> str:
        return Truncator(obj.comment).chars(80)


@admin.register(ChatAnalytics)
class ChatAnalyticsAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "session",
        "user_messages",
        "answers",
        "cache_hits",
        "fallbacks",
        "errors",
        "rate_limited",
        "average_response",
        "thumbs_up",
        "thumbs_down",
        "updated_at",
    )
    list_select_related = ("session",)
    date_hierarchy = "updated_at"

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [f.name for f in self.model._meta.concrete_fields] + ["average_response"]

    @admin.display(description=_("average response time (ms)"))
    def average_response(self, obj: ChatAnalytics) -> int | None:
        return obj.average_response_ms


@admin.register(UnansweredQuestion)
class UnansweredQuestionAdmin(admin.ModelAdmin):
    """What visitors asked that the knowledge base could not answer, most asked first.

    Each row groups the wordings of one question (same words, any case,
    accents or punctuation); *times asked* counts them. Add an entry with the
    link, then tick *resolved* (asking again reopens it).
    """

    list_display = (
        "question",
        "count",
        "locale",
        "reason",
        "last_asked_at",
        "resolved",
        "add_entry",
    )
    list_editable = ("resolved",)
    list_filter = ("resolved", "reason", "locale", "last_asked_at")
    search_fields = ("question", "key")
    ordering = ("resolved", "-count", "-last_asked_at")
    date_hierarchy = "last_asked_at"
    actions = ("mark_resolved",)
    readonly_fields = (
        "question",
        "key",
        "locale",
        "reason",
        "count",
        "first_asked_at",
        "last_asked_at",
        "last_session",
        "add_entry",
    )
    fields = (*readonly_fields, "resolved")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description=_("knowledge base"))
    def add_entry(self, obj: UnansweredQuestion) -> str:
        url = reverse("admin:sophie_chat_knowledgebaseentry_add")
        query = urlencode({"question": obj.question[:500], "locale": obj.locale or "en"})
        return format_html('<a href="{}?{}">{}</a>', url, query, _("Add an entry"))

    @admin.action(description=_("Mark selected questions as resolved"), permissions=["change"])
    def mark_resolved(self, request: HttpRequest, queryset: QuerySet) -> None:
        changing = list(queryset.filter(resolved=False))
        count = queryset.filter(pk__in=[question.pk for question in changing]).update(
            resolved=True
        )
        log_field_change(self, request, changing, "resolved")
        self.message_user(
            request,
            ngettext(
                "%(count)d question marked as resolved.",
                "%(count)d questions marked as resolved.",
                count,
            )
            % {"count": count},
            messages.SUCCESS,
        )


@admin.register(TokenUsage)
class TokenUsageAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Model tokens spent per user or IP address per day (the daily token budget)."""

    list_display = ("subject", "day", "tokens", "updated_at")
    list_filter = ("day",)
    search_fields = ("subject",)
    date_hierarchy = "day"


@admin.register(ToolCall)
class ToolCallAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Every tool call the model made: a record (read-only), arguments as the tool redacts them."""

    list_display = (
        "created_at",
        "name",
        "status",
        "confirmation",
        "duration_ms",
        "confirmed_by",
        "session",
    )
    list_filter = ("name", "status", "confirmation")
    date_hierarchy = "created_at"
    list_select_related = ("confirmed_by", "session")
    raw_id_fields = ("session", "confirmed_by")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [field.name for field in self.model._meta.fields]


#: The columns of the leads' CSV export, in order.
LEAD_CSV_FIELDS = (
    "id",
    "created_at",
    "service",
    "neighbourhood",
    "preferred_date",
    "name",
    "phone",
    "email",
    "details",
    "locale",
    "user_id",
    "session_id",
)


@admin.register(Handoff)
class HandoffAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Conversations handed to a person, and who took them (docs/handoff.md)."""

    list_display = (
        "requested_at",
        "state",
        "agent",
        "claimed_at",
        "first_reply_at",
        "ended_at",
        "satisfaction_score",
        "session",
    )
    list_filter = ("state", "requested_at")
    list_select_related = ("agent", "session")
    date_hierarchy = "requested_at"

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [f.name for f in self.model._meta.concrete_fields]


@admin.register(Lead)
class LeadAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Requests visitors left for the staff through ``capture_lead`` (docs/leads.md)."""

    list_display = (
        "created_at",
        "name",
        "service",
        "neighbourhood",
        "preferred_date",
        "contact",
        "source",
    )
    list_filter = ("source", "created_at", "locale")
    search_fields = ("name", "email", "phone", "service", "neighbourhood")
    date_hierarchy = "created_at"
    actions = ("export_csv",)
    readonly_fields = (*LEAD_CSV_FIELDS[1:10], "user", "session")
    fields = readonly_fields

    @admin.display(description=_("contact"))
    def contact(self, obj: Lead) -> str:
        return " · ".join(value for value in (obj.phone, obj.email) if value)

    @admin.action(description=_("Export selected leads as CSV"), permissions=["view"])
    def export_csv(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse:
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
        response["Content-Disposition"] = f'attachment; filename="sophie-chat-leads-{stamp}.csv"'
        writer = csv.writer(response)
        writer.writerow(LEAD_CSV_FIELDS)
        for lead in queryset.order_by("created_at", "pk"):
            writer.writerow([_csv_cell(getattr(lead, name)) for name in LEAD_CSV_FIELDS])
        return response


def _csv_cell(value: Any) -> str:
    text = "" if value is None else str(value)
    # A cell starting with = + - @ is a formula to a spreadsheet: visitors wrote these.
    if text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + text
    return text
