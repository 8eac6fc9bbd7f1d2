"""OfflineBackend: answers from the knowledge the turn retrieved, without a network."""

from sophie_chat.knowledge.base import KnowledgeHit
from sophie_chat.llm.base import LLMRequest, PromptMessage
from sophie_chat.llm.offline import OfflineBackend


def request(locale="en", hits=()):
    return LLMRequest(messages=(PromptMessage("user", "question"),), locale=locale,
                      knowledge=tuple(hits))


HIT = KnowledgeHit(id="1", question="Price?", answer="Cleaning starts at R$ 120.", score=3.0)


async def test_streams_the_best_entry_word_by_word():
    backend = OfflineBackend(delay=0)
    chunks = [chunk async for chunk in backend.stream(request(hits=[HIT]))]
    deltas = [c.delta for c in chunks if c.delta]
    assert len(deltas) > 1
    assert "".join(deltas) == "Cleaning starts at R$ 120."
    assert chunks[-1].usage is not None


async def test_says_it_does_not_know_in_the_visitor_language():
    backend = OfflineBackend(delay=0)
    english = await backend.complete(request())
    portuguese = await backend.complete(request(locale="pt-br"))
    assert "I don't have an answer" in english
    assert portuguese != english


async def test_unknown_answer_option_replaces_the_built_in_text():
    backend = OfflineBackend(delay=0, unknown_answer="Ask our team on WhatsApp.")
    assert await backend.complete(request()) == "Ask our team on WhatsApp."


def test_needs_no_network():
    assert OfflineBackend.uses_network is False
