"""An answer engine without a model: replies with the knowledge entry that answers.

The embedded default of the demo, and a choice for air-gapped sites. It never
touches the network; it streams the answer of the entry the turn's search
judged good enough to answer with
(:func:`~sophie_chat.knowledge.grounding.best_answer`), or says it does not
know, in the site's ``NO_ANSWER_MESSAGE``, followed by what the visitor can
be offered instead (a person, leaving a message: :mod:`sophie_chat.offers`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping

from django.utils import translation
from django.utils.translation import gettext as _

from sophie_chat import conf, offers
from sophie_chat.knowledge.base import KnowledgeHit
from sophie_chat.knowledge.grounding import best_answer
from sophie_chat.llm.base import BaseLLMBackend, LLMChunk, LLMRequest, Usage
from sophie_chat.llm.dummy import _split_keeping_spaces


def no_answer_message(locale: str | None) -> str:
    """What to say when the knowledge base has no answer, in ``locale``.

    ``NO_ANSWER_MESSAGE`` (text, or a dict of texts by locale: the exact
    locale, then its language, then ``"en"``), else a built-in neutral text
    in the visitor's language.
    """
    with translation.override(locale or None):
        configured = conf.get("NO_ANSWER_MESSAGE")
        if isinstance(configured, Mapping):
            normalized = (locale or "").strip().lower().replace("_", "-")
            configured = (
                configured.get(normalized)
                or configured.get(normalized.split("-", 1)[0])
                or configured.get("en")
            )
        if configured:
            return str(configured)
        return _("Sorry, I don't know the answer to that. Could you ask it in another way?")


class OfflineBackend(BaseLLMBackend):
    """Answers from the knowledge base, streamed word by word.

    Options:
        delay: seconds between words, so the widget shows a stream (0 for none).
        unknown_answer: what to say when no entry answers, for this backend
            only (default: ``NO_ANSWER_MESSAGE``).
    """

    uses_network = False
    model_name = "offline"

    def __init__(self, *, delay: float = 0.02, unknown_answer: str | None = None) -> None:
        if delay < 0:
            raise ValueError("delay must be 0 or more seconds")
        self.delay = delay
        self.unknown_answer = unknown_answer

    def entry(self, request: LLMRequest) -> KnowledgeHit | None:
        """The knowledge entry the answer is, or None to say it does not know."""
        return best_answer(request.knowledge)

    def answer(self, request: LLMRequest) -> str:
        """The entry's answer; or "I don't know", then the request's offers."""
        hit = self.entry(request)
        if hit is not None:
            return hit.answer
        text = self.unknown_answer or no_answer_message(request.locale)
        if request.offers:
            text = f"{text}\n\n{offers.as_text(request.offers)}"
        return text

    async def stream(self, request: LLMRequest) -> AsyncIterator[LLMChunk]:
        hit = self.entry(request)
        words = _split_keeping_spaces(self.answer(request))
        for word in words:
            if self.delay:
                await asyncio.sleep(self.delay)
            yield LLMChunk(delta=word, model=self.model_name)
        yield LLMChunk(
            usage=Usage(prompt_tokens=0, completion_tokens=len(words)),
            model=self.model_name,
            finish_reason="stop",
            sources=(hit,) if hit is not None else (),
        )
