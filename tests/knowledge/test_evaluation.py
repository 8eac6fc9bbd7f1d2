"""The demo's evaluation set, answered on the offline path, and the case file format.

The demo's set (``example_project/knowledge/evaluation.yaml``) runs against
the demo's knowledge base loaded as a site loads it, through the default
database source (on PostgreSQL too, full-text search included, when the
suite runs there). Two other knowledge bases (in ``data/``) check that the
defaults carry over: a gym's, measured when they were chosen, and a dental
clinic's, held out (never used to choose anything).
"""

import shutil
from pathlib import Path

import pytest
from asgiref.sync import sync_to_async
from django.core.management import call_command
from django.db import connections

from sophie_chat.knowledge.database import DatabaseKnowledgeSource
from sophie_chat.knowledge.evaluation import (
    Case,
    CaseFileError,
    evaluate_retrieval,
    load_cases,
)
from sophie_chat.knowledge.files import FileKnowledgeSource
from sophie_chat.knowledge.query import search_query
from sophie_chat.llm.base import LLMRequest
from sophie_chat.llm.offline import OfflineBackend, no_answer_message

DEMO = Path(__file__).resolve().parents[2] / "example_project" / "knowledge"
DATA = Path(__file__).resolve().parent / "data"

# The thresholds the demo's set must meet (docs/retrieval.md).
RECALL_AT_1 = 0.9
OUT_OF_SCOPE_DECLINED = 0.9
IN_SCOPE_DECLINED = 0.1


def describe(report):
    return "\n".join(
        f"{r.case.question!r} ({r.case.locale}, after {list(r.case.history)}) -> "
        f"{[(h.question, h.score, h.coverage, h.confident) for h in r.hits]}"
        for r in report.failures()
    )


@pytest.fixture
async def demo_knowledge(transactional_db):
    await sync_to_async(call_command)(
        "populate_knowledge_base", str(DEMO / "home_services.json"), verbosity=0
    )
    yield
    # Searches query from Sophie's database threads; release their connections
    # so the test database can be dropped.
    await sync_to_async(connections.close_all)()


def test_the_demo_set_is_large_and_mixed():
    cases = load_cases(DEMO / "evaluation.yaml")
    hard = [case for case in cases if case.decline or case.history]

    assert len(cases) >= 80
    assert {case.locale for case in cases} == {"en", "pt-br"}
    assert len(hard) >= len(cases) / 3
    assert any(case.decline and case.history for case in cases)


async def test_the_demo_set_meets_its_thresholds(demo_knowledge):
    cases = load_cases(DEMO / "evaluation.yaml")

    report = await evaluate_retrieval(DatabaseKnowledgeSource(), cases)

    assert report.recall_at_1 >= RECALL_AT_1, describe(report)
    assert report.answered_right >= RECALL_AT_1, describe(report)
    assert report.declined_out_of_scope >= OUT_OF_SCOPE_DECLINED, describe(report)
    assert report.declined_in_scope <= IN_SCOPE_DECLINED, describe(report)
    assert report.recall_at_3 >= 0.95
    assert report.fact_coverage >= 0.9


async def test_the_offline_backend_answers_the_demo_set_as_evaluated(demo_knowledge):
    source = DatabaseKnowledgeSource()
    backend = OfflineBackend(delay=0)
    report = await evaluate_retrieval(source, load_cases(DEMO / "evaluation.yaml"))

    for result in report.results:
        request = LLMRequest(messages=(), locale=result.case.locale, knowledge=result.hits)
        chunks = [chunk async for chunk in backend.stream(request)]
        text = "".join(chunk.delta for chunk in chunks)
        if result.declined:
            assert text == no_answer_message(result.case.locale)
            assert chunks[-1].sources == ()
        else:
            assert text == result.answer.answer
            assert chunks[-1].sources == (result.answer,)


async def test_the_issue_examples_are_answered_or_declined(demo_knowledge):
    source = DatabaseKnowledgeSource()

    async def answer(question, locale="en", history=()):
        hits = await source.search(search_query(question, history), locale=locale)
        request = LLMRequest(messages=(), locale=locale, knowledge=tuple(hits))
        return await OfflineBackend(delay=0).complete(request)

    assert "Curitiba" in await answer("Do you work in Curitiba?")
    assert await answer("Do you clean swimming pools?") == no_answer_message("en")
    assert await answer("I want to talk to a human") == no_answer_message("en")
    assert await answer("Quero falar com um humano", "pt-br") == no_answer_message("pt-br")
    assert "R$ 90" in await answer("and how much is it?", history=["do you fix leaking taps?"])
    assert "R$ 90" in await answer("e quanto custa?", "pt-br", ["vocês consertam vazamento?"])


@pytest.mark.parametrize("name", ["gym", "clinic"])
async def test_the_defaults_carry_over_to_other_knowledge_bases(tmp_path, name):
    # The gym's set was measured when the defaults were chosen, so it is held
    # to them with a margin; the clinic's was never looked at (docs/retrieval.md).
    shutil.copy(DATA / f"{name}_knowledge.yaml", tmp_path)
    cases = load_cases(DATA / f"{name}_evaluation.yaml")

    report = await evaluate_retrieval(FileKnowledgeSource(path=tmp_path), cases)

    assert report.recall_at_1 >= 0.95, describe(report)
    assert report.answered_right >= RECALL_AT_1, describe(report)
    assert report.declined_out_of_scope >= OUT_OF_SCOPE_DECLINED, describe(report)
    assert report.declined_in_scope <= IN_SCOPE_DECLINED, describe(report)


def test_the_held_out_set_is_large_and_mixed():
    cases = load_cases(DATA / "clinic_evaluation.yaml")

    assert len(cases) >= 70
    assert {case.locale for case in cases} == {"en", "pt-br"}
    assert sum(case.decline or bool(case.history) for case in cases) >= len(cases) / 3


def test_a_case_file_may_be_json(tmp_path):
    path = tmp_path / "cases.json"
    path.write_text(
        '[{"question": "Oi, quanto custa?", "locale": "pt_BR", "history": ["faxina"],'
        ' "expect_entries": ["Quanto custa uma faxina?"], "facts": ["R$ 150"]}]',
        encoding="utf-8",
    )

    assert load_cases(path) == [
        Case(
            question="Oi, quanto custa?",
            locale="pt-br",
            history=("faxina",),
            expect_entries=("Quanto custa uma faxina?",),
            facts=("R$ 150",),
        )
    ]


def test_bad_cases_are_all_reported_with_their_number(tmp_path):
    path = tmp_path / "cases.yaml"
    path.write_text(
        "- {question: ok, decline: true}\n"
        "- {question: '', decline: true}\n"
        "- {question: both, decline: true, expect_entries: [x]}\n"
        "- {question: neither}\n"
        "- {question: typo, declin: true}\n",
        encoding="utf-8",
    )

    with pytest.raises(CaseFileError) as caught:
        load_cases(path)

    message = str(caught.value)
    assert "case 1" not in message
    assert 'case 2: "question" is required' in message
    assert "case 3: a case has" in message
    assert 'case 4: a case needs "expect_entries"' in message
    assert "case 5: unknown field(s) 'declin'" in message


def test_a_case_file_that_is_not_a_list_is_refused(tmp_path):
    path = tmp_path / "cases.yaml"
    path.write_text("question: alone\n", encoding="utf-8")

    with pytest.raises(CaseFileError, match="expected a list of cases"):
        load_cases(path)
