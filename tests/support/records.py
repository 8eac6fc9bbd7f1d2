"""Rows made directly: users, and stored conversations for tests of what is computed
from them (analytics, the dashboard, data rights, retention)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.utils import timezone

from sophie_chat.models import ChatMessage, ChatSession, MessageFeedback


@sync_to_async
def make_user(username: str = "ana", **fields: Any) -> Any:
    """A Django user (password ``"x"``), from async tests."""
    return get_user_model().objects.create_user(username=username, password="x", **fields)


def conversation(
    *,
    at: datetime | None = None,
    user: Any = None,
    turns: list[dict[str, Any]] | None = None,
    **fields: Any,
) -> ChatSession:
    """A conversation started ``at``, with one question and answer per item of ``turns``.

    A turn is ``{"question": ..., "answer": ..., "model": ..., "cached": ..., "fallback": ...,
    "first_token_ms": ..., "total_ms": ..., "prompt_tokens": ..., "completion_tokens": ...,
    "rating": "up"|"down", "comment": ..., "cache_key": ..., "error": ..., "status": ...}``.
    """
    at = at or timezone.now()
    session = ChatSession.objects.create(
        user=user,
        user_type="client" if user else "anonymous",
        created_at=at,
        **fields,
    )
    for index, turn in enumerate(turns or []):
        asked = at + timedelta(seconds=10 * index)
        question = ChatMessage.objects.create(
            session=session, role="user", content=turn.get("question", "?"), created_at=asked
        )
        metadata = {
            "model": turn.get("model", "dummy"),
            "cached": turn.get("cached", False),
            "fallback": turn.get("fallback", False),
            "sources": [],
        }
        if turn.get("error"):
            metadata["error"] = turn["error"]
        answer = ChatMessage.objects.create(
            session=session,
            role="assistant",
            content=turn.get("answer", "An answer."),
            reply_to=question,
            created_at=asked + timedelta(seconds=1),
            status=turn.get("status", "complete"),
            metadata=metadata,
            first_token_ms=turn.get("first_token_ms", 100),
            total_ms=turn.get("total_ms", 1000),
            prompt_tokens=turn.get("prompt_tokens", 0),
            completion_tokens=turn.get("completion_tokens", 0),
            cache_key=turn.get("cache_key", ""),
        )
        if turn.get("rating"):
            MessageFeedback.objects.create(
                message=answer, rating=turn["rating"], comment=turn.get("comment", "")
            )
    # updated_at is auto_now: last activity is set by update().
    ChatSession.objects.filter(pk=session.pk).update(
        updated_at=at + timedelta(seconds=10 * len(turns or []))
    )
    session.refresh_from_db()
    return session
