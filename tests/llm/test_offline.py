"""OfflineBackend: answers from the knowledge the turn retrieved, without a network."""

import pytest
from django.test import override_settings

from sophie_chat.knowledge.base import KnowledgeHit
from sophie_chat.llm.base import LLMRequest, PromptMessage
from sophie_chat.llm.offline import OfflineBackend, no_answer_message
from sophie_chat.unanswered import UNSURE_PATTERNS, says_unsure


def request(locale="en", hits=()):
    return LLMRequest(messages=(PromptMessage("user", "question"),), locale=locale,
                      knowledge=tuple(hits))


HIT = KnowledgeHit(id="1", question="Price?", answer="Cleaning starts at R$ 120.", score=3.0)
RELATED = KnowledgeHit(
    id="2", question="Price?", answer="Cleaning starts at R$ 120.", score=6.0, coverage=0.2,
    confident=False,
)


async def test_streams_the_best_entry_word_by_word():
    backend = OfflineBackend(delay=0)
    chunks = [chunk async for chunk in backend.stream(request(hits=[HIT]))]
    deltas = [c.delta for c in chunks if c.delta]
    assert len(deltas) > 1
    assert "".join(deltas) == "Cleaning starts at R$ 120."
    assert chunks[-1].usage is not None


async def test_the_answer_names_the_one_entry_it_used():
    other = KnowledgeHit(id="3", question="Booking?", answer="In the app.", score=2.0)
    chunks = [chunk async for chunk in OfflineBackend(delay=0).stream(request(hits=[HIT, other]))]

    assert chunks[-1].sources == (HIT,)
    assert all(chunk.sources is None for chunk in chunks[:-1])


async def test_an_entry_that_is_only_related_is_not_presented_as_the_answer():
    chunks = [chunk async for chunk in OfflineBackend(delay=0).stream(request(hits=[RELATED]))]

    assert "".join(c.delta for c in chunks) == no_answer_message("en")
    assert chunks[-1].sources == ()


async def test_says_it_does_not_know_in_the_visitor_language():
    backend = OfflineBackend(delay=0)
    english = await backend.complete(request())
    portuguese = await backend.complete(request(locale="pt-br"))
    assert english == "Sorry, I don't know the answer to that. Could you ask it in another way?"
    assert portuguese.startswith("Desculpe")
    assert portuguese != english


@pytest.mark.parametrize("locale", ["en", "pt-br"])
async def test_the_built_in_no_answer_text_names_no_business_and_counts_as_unanswered(locale):
    text = await OfflineBackend(delay=0).complete(request(locale=locale))

    for business_word in ("services", "prices", "bookings", "payments", "serviços", "preços"):
        assert business_word not in text
    assert says_unsure(text)
    assert UNSURE_PATTERNS


@override_settings(SOPHIE_CHAT={"NO_ANSWER_MESSAGE": "Ask our team on WhatsApp."})
async def test_no_answer_message_setting_replaces_the_built_in_text():
    assert await OfflineBackend(delay=0).complete(request()) == "Ask our team on WhatsApp."


@override_settings(
    SOPHIE_CHAT={"NO_ANSWER_MESSAGE": {"en": "Ask our team.", "pt": "Fale com a equipe."}}
)
async def test_no_answer_message_may_be_given_by_locale():
    backend = OfflineBackend(delay=0)

    assert await backend.complete(request(locale="pt-br")) == "Fale com a equipe."
    assert await backend.complete(request(locale="en-gb")) == "Ask our team."
    assert await backend.complete(request(locale="de")) == "Ask our team."


@override_settings(SOPHIE_CHAT={"NO_ANSWER_MESSAGE": "Ask our team."})
async def test_unknown_answer_option_replaces_the_setting_for_this_backend():
    backend = OfflineBackend(delay=0, unknown_answer="Ask our team on WhatsApp.")
    assert await backend.complete(request()) == "Ask our team on WhatsApp."


def test_needs_no_network():
    assert OfflineBackend.uses_network is False
