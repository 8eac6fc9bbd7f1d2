"""A scripted backend for tests: yours and ours.

Configure it in your test settings::

    SOPHIE_CHAT = {"LLM": {"BACKEND": "sophie_chat.llm.dummy.DummyBackend",
                           "OPTIONS": {"default_reply": "Hello from the test model."}}}

and script it from a test::

    from sophie_chat import backends
    from sophie_chat.llm.base import LLMTimeout

    model = backends.llm()
    model.enqueue("First answer.", "Second answer.")
    model.enqueue_error(LLMTimeout())
    ...
    assert "refund" in model.requests[-1].messages[-1].content

Replies are consumed in order; when the queue is empty, ``default_reply`` is
streamed. Every request is recorded in :attr:`DummyBackend.requests`.

A reply may be tool calls instead (docs/tools.md, "Testing")::

    model.enqueue_tool_calls(("my_bookings", {}))          # round 1: a call
    model.enqueue("You have one booking, on Friday.")      # round 2: the answer
    ...
    assert model.requests[1].messages[-1].role == "tool"   # the result it was given
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from sophie_chat.llm.base import (
    BaseLLMBackend,
    LLMChunk,
    LLMError,
    LLMRequest,
    LLMToolCall,
    Usage,
)


@dataclass(frozen=True, slots=True)
class ScriptedReply:
    """One scripted answer: ``text``, optionally failing with ``error``.

    With ``error_after`` set, that many deltas are streamed before the error
    is raised (a stream that breaks midway); otherwise the error is raised
    before the first delta.
    """

    text: str = ""
    error: LLMError | None = None
    error_after: int | None = None
    #: The calls the model makes after ``text`` (a round that calls tools).
    tool_calls: tuple[LLMToolCall, ...] = ()


class DummyBackend(BaseLLMBackend):
    """Streams scripted replies word by word. No network.

    Options:
        default_reply: streamed when no reply is queued.
        delay: seconds to wait before each delta (to test streaming and
            cancellation).
        first_token_delay: seconds to wait before the first delta.
        model: the model name reported in answers' metadata.
    """

    uses_network = False
    supports_tools = True

    def __init__(
        self,
        *,
        default_reply: str = "This is a reply from the dummy model.",
        delay: float = 0.0,
        first_token_delay: float = 0.0,
        model: str = "dummy",
    ) -> None:
        self.default_reply = default_reply
        self.delay = delay
        self.first_token_delay = first_token_delay
        self.model_name = model
        self.queue: deque[ScriptedReply] = deque()
        self.requests: list[LLMRequest] = []
        #: How many streams were closed before their end (cancelled or abandoned).
        self.closed_early = 0

    def enqueue(self, *texts: str) -> None:
        """Queue replies, streamed in order by the next calls."""
        self.queue.extend(ScriptedReply(text=text) for text in texts)

    def enqueue_error(self, error: LLMError, *, text: str = "", after: int | None = None) -> None:
        """Queue a failure: ``error`` raised at once, or after ``after`` deltas of ``text``."""
        self.queue.append(ScriptedReply(text=text, error=error, error_after=after))

    def enqueue_tool_calls(
        self, *calls: tuple[str, dict[str, Any] | str] | LLMToolCall, text: str = ""
    ) -> list[LLMToolCall]:
        """Queue one reply that calls tools (all in the same round), after ``text``.

        Each call is an :class:`LLMToolCall` or ``(name, arguments)``, the
        arguments a dict or the raw JSON text (to script malformed ones).
        Returns the calls, with their ids.
        """
        made = [call if isinstance(call, LLMToolCall) else _tool_call(*call) for call in calls]
        self.queue.append(ScriptedReply(text=text, tool_calls=tuple(made)))
        return made

    def reset(self) -> None:
        """Forget queued replies and recorded requests."""
        self.queue.clear()
        self.requests.clear()
        self.closed_early = 0

    async def stream(self, request: LLMRequest) -> AsyncIterator[LLMChunk]:
        self.requests.append(request)
        reply = self.queue.popleft() if self.queue else ScriptedReply(text=self.default_reply)
        if reply.error is not None and reply.error_after is None:
            raise reply.error
        words = _split_keeping_spaces(reply.text)
        finished = False
        try:
            if self.first_token_delay:
                await asyncio.sleep(self.first_token_delay)
            for index, word in enumerate(words):
                if reply.error is not None and index == reply.error_after:
                    raise reply.error
                if self.delay:
                    await asyncio.sleep(self.delay)
                yield LLMChunk(delta=word, model=self.model_name)
            if reply.error is not None:
                raise reply.error
            if reply.tool_calls:
                yield LLMChunk(
                    model=self.model_name, tool_calls=reply.tool_calls, finish_reason="tool_calls"
                )
            prompt = sum(len(m.content.split()) for m in request.messages)
            yield LLMChunk(
                usage=Usage(prompt_tokens=prompt, completion_tokens=len(words)),
                model=self.model_name,
                finish_reason="tool_calls" if reply.tool_calls else "stop",
            )
            finished = True
        finally:
            if not finished and reply.error is None:
                self.closed_early += 1


def _tool_call(name: str, arguments: dict[str, Any] | str) -> LLMToolCall:
    text = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return LLMToolCall(id=f"call_{uuid.uuid4().hex[:12]}", name=name, arguments=text)


def _split_keeping_spaces(text: str) -> list[str]:
    """``"a b  c"`` -> ``["a", " b", "  c"]``: joined, the pieces equal the text."""
    pieces: list[str] = []
    current = ""
    for ch in text:
        if ch.isspace() and current and not current[-1].isspace() and current.strip():
            pieces.append(current)
            current = ""
        current += ch
    if current:
        pieces.append(current)
    return pieces
