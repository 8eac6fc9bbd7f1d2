"""The inbox's records in the Django admin: canned replies (edited here) and internal notes."""

from __future__ import annotations

from django.contrib import admin
from django.utils.text import Truncator
from django.utils.translation import gettext_lazy as _

from sophie_chat.models import CannedReply, InternalNote


@admin.register(CannedReply)
class CannedReplyAdmin(admin.ModelAdmin):
    list_display = ("title", "language", "short_text", "updated_at")
    list_filter = ("language",)
    search_fields = ("title", "text")
    fields = ("title", "language", "text")

    @admin.display(description=_("text"))
    def short_text(self, obj: CannedReply) -> str:
        return Truncator(obj.text).chars(80)


@admin.register(InternalNote)
class InternalNoteAdmin(admin.ModelAdmin):
    """Notes are written in the inbox; here they are read (and deletable)."""

    list_display = ("created_at", "author", "short_content", "handoff")
    list_filter = ("created_at",)
    search_fields = ("content",)
    readonly_fields = ("handoff", "author", "content", "created_at")
    fields = readonly_fields

    def has_add_permission(self, request):  # type: ignore[no-untyped-def]
        return False

    def has_change_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False

    @admin.display(description=_("note"))
    def short_content(self, obj: InternalNote) -> str:
        return Truncator(obj.content).chars(80)
