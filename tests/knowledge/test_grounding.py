"""What an answer stands on: the entry to answer with and the sources it cites."""

from sophie_chat.knowledge.base import KnowledgeHit
from sophie_chat.knowledge.grounding import best_answer, sources_for


def hit(question, score, *, locale="en", url="", confident=True):
    return KnowledgeHit(
        id=question, question=question, answer="...", score=score, locale=locale, url=url,
        confident=confident,
    )


def test_the_best_hit_is_the_answer_when_confident():
    first = hit("Do you offer plumbing services?", 9.0)

    assert best_answer([first, hit("How do I pay?", 3.0)]) is first


def test_no_answer_when_the_best_hit_is_only_related():
    assert best_answer([hit("How much does a cleaning cost?", 6.0, confident=False)]) is None
    assert best_answer([]) is None


def test_hits_of_a_source_that_cannot_judge_are_trusted():
    assert best_answer([KnowledgeHit(id="1", question="Q", answer="A", score=0.1)]) is not None


def test_sources_are_the_hits_close_to_the_best():
    hits = [hit("Cancel", 10.0), hit("Reschedule", 8.5), hit("Refunds", 5.0)]

    assert [h.question for h in sources_for(hits, locale="en")] == ["Cancel", "Reschedule"]
    assert [h.question for h in sources_for(hits, locale="en", ratio=1.0)] == ["Cancel"]


def test_sources_keep_to_the_answers_language_when_they_can():
    hits = [hit("Refunds", 10.0), hit("Reembolso", 9.5, locale="pt-br"), hit("Estorno", 9.0,
            locale="pt-br")]

    assert [h.question for h in sources_for(hits, locale="pt-br")] == ["Reembolso", "Estorno"]


def test_a_source_in_another_language_is_cited_when_nothing_else_is_close():
    hits = [hit("Refunds", 10.0), hit("Reembolso", 4.0, locale="pt-br")]

    assert [h.question for h in sources_for(hits, locale="pt-br")] == ["Refunds"]


def test_sources_name_each_page_once():
    hits = [hit("Ovens", 10.0, url="/faq/"), hit("Fridges", 9.0, url="/faq/")]

    assert [h.question for h in sources_for(hits, locale="en")] == ["Ovens"]


def test_an_answer_the_knowledge_base_does_not_back_cites_nothing():
    hits = [hit("How much does a cleaning cost?", 6.0, confident=False)]

    assert sources_for(hits, locale="en") == []
