"""Optional task wrappers for Django's tasks framework.

With ``django.tasks`` (Django 6.0 and later), or the ``django-tasks``
backport on Django 5.2, this module defines:

``cleanup_old_chat_sessions``
    :func:`sophie_chat.retention.cleanup` as a task, e.g. enqueued daily by
    the scheduler of the task backend you run.
``delete_user_conversations``
    :func:`sophie_chat.data_rights.delete_conversations` for one user's
    conversations, for a "delete my data" request handled in the background.

Without either, the module still imports and :data:`TASKS_AVAILABLE` is
False. Arguments and results are plain JSON values, as task backends require.
"""

from __future__ import annotations

from typing import Any

try:
    from django.tasks import task
except ImportError:  # Django 5.2
    try:
        from django_tasks import task  # type: ignore[no-redef]
    except ImportError:
        task = None  # type: ignore[assignment]

from sophie_chat import retention
from sophie_chat.data_rights import delete_conversations
from sophie_chat.models import ChatSession

#: Whether the task wrappers below exist.
TASKS_AVAILABLE = task is not None

__all__ = ["TASKS_AVAILABLE"]


def run_cleanup(
    days: int | None = None, batch_size: int = retention.DEFAULT_BATCH_SIZE
) -> dict[str, Any]:
    """:func:`sophie_chat.retention.cleanup`, reporting plain JSON values."""
    report = retention.cleanup(days=days, batch_size=batch_size)
    return {
        "expired": report.expired,
        "deleted_conversations": report.deleted_conversations,
        "deleted_messages": report.deleted_messages,
        "deleted_cached_answers": report.deleted_cached_answers,
        "deleted_error_records": report.deleted_error_records,
        "frozen_days": report.frozen_days,
        "cutoff": report.cutoff.isoformat() if report.cutoff else None,
    }


def run_delete_user_conversations(user_id: int) -> dict[str, int]:
    """Delete every conversation of the user with this primary key."""
    deleted = delete_conversations(ChatSession.objects.filter(user_id=user_id))
    return {
        "conversations": deleted.conversations,
        "messages": deleted.messages,
        "cached_answers": deleted.cached_answers,
    }


if task is not None:

    @task()
    def cleanup_old_chat_sessions(
        days: int | None = None, batch_size: int = retention.DEFAULT_BATCH_SIZE
    ) -> dict[str, Any]:
        """Expire and delete old conversations (``manage.py cleanup_old_chat_sessions``)."""
        return run_cleanup(days=days, batch_size=batch_size)

    @task()
    def delete_user_conversations(user_id: int) -> dict[str, int]:
        """Delete every conversation of one user and their cached answers."""
        return run_delete_user_conversations(user_id)

    __all__ += ["cleanup_old_chat_sessions", "delete_user_conversations"]
