"""An answer engine without a model: replies with the best knowledge entry.

The embedded default of the demo, and a choice for air-gapped sites. It never
touches the network; it streams the answer of the most relevant entry the
turn retrieved, or says it does not know.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from django.utils import translation
from django.utils.translation import gettext as _

from sophie_chat.llm.base import BaseLLMBackend, LLMChunk, LLMRequest, Usage
from sophie_chat.llm.dummy import _split_keeping_spaces


class OfflineBackend(BaseLLMBackend):
    """Answers from the knowledge base, streamed word by word.

    Options:
        delay: seconds between words, so the widget shows a stream (0 for none).
        unknown_answer: what to say when no entry matches (default: a
            translated "I don't know that yet" message).
    """

    uses_network = False
    model_name = "offline"

    def __init__(self, *, delay: float = 0.02, unknown_answer: str | None = None) -> None:
        if delay < 0:
            raise ValueError("delay must be 0 or more seconds")
        self.delay = delay
        self.unknown_answer = unknown_answer

    def answer(self, request: LLMRequest) -> str:
        if request.knowledge:
            return request.knowledge[0].answer
        if self.unknown_answer:
            return self.unknown_answer
        with translation.override(request.locale or None):
            return _(
                "I don't have an answer to that yet. Could you rephrase it, or ask about our "
                "services, prices, bookings or payments?"
            )

    async def stream(self, request: LLMRequest) -> AsyncIterator[LLMChunk]:
        words = _split_keeping_spaces(self.answer(request))
        for word in words:
            if self.delay:
                await asyncio.sleep(self.delay)
            yield LLMChunk(delta=word, model=self.model_name)
        yield LLMChunk(
            usage=Usage(prompt_tokens=0, completion_tokens=len(words)),
            model=self.model_name,
            finish_reason="stop",
        )
