"""Stored conversations made directly, for tests of what is computed from them
(analytics, the dashboard, data rights, retention)."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from sophie_chat.models import ChatMessage, ChatSession, MessageFeedback


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


async def eventually(check: Callable[[], Any], timeout: float = 5.0) -> Any:
    """``check()``'s first truthy result (awaited if it is awaitable), polled until ``timeout``.

    What a turn records after its answer ended (unanswered questions) is
    written while the visitor reads the answer, in another database thread
    than the test's.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result or time.monotonic() > deadline:
            return result
        await asyncio.sleep(0.02)
