"""The retrieval benchmark runs (on small numbers here) and meets its recall target."""

import benchmarks.retrieval as bench
import pytest
from asgiref.sync import sync_to_async
from django.db import connections

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
async def _close_worker_thread_connections():
    yield
    await sync_to_async(connections.close_all)()


def test_the_question_set_is_labelled_in_both_languages():
    questions = bench.load_questions()
    languages = {q.locale.split("-")[0] for q in questions}
    demo_urls = {row["url"] for row in bench.knowledge_rows(0)}

    assert len(questions) >= 60
    assert languages == {"pt", "en"}
    assert {q.url for q in questions} <= demo_urls
    assert {"typo", "no-accents", "abbreviation", "slang", "paraphrase", "answer-word"} <= {
        q.kind for q in questions
    }


def test_distractors_are_deterministic_and_distinct():
    first = bench.distractors(300, seed=3)

    assert first == bench.distractors(300, seed=3)
    assert len({(row["question"], row["locale"]) for row in first}) == 300


async def test_benchmark_meets_the_recall_target_on_a_small_knowledge_base():
    results = await bench.run(entries=300, rounds=1)

    table = bench.format_table(results)
    assert [r.backend for r in results][-1] == "files (Markdown/YAML/JSON)"
    for result in results:
        assert result.entries == 300
        assert result.recall_at_3 >= bench.TARGETS["recall_at_3"], (result.backend, result.misses)
    assert "| recall@1 | recall@3 |" in table


async def test_every_backend_answers_the_evaluation_set():
    results = await bench.run_evaluation()

    table = bench.format_evaluation_table(results)
    assert [r.backend for r in results][-1] == "files (Markdown/YAML/JSON)"
    for result in results:
        assert result.cases >= 80
        assert result.answered_right >= 0.9, result
        assert result.declined_out_of_scope >= 0.9, result
    assert "| answered right |" in table


def test_percentile_is_nearest_rank():
    values = list(range(1, 101))

    assert bench.percentile(values, 0.99) == 99
    assert bench.percentile(values, 0.5) == 50
