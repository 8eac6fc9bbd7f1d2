"""``manage.py evaluate_sophie``: real turns over a case file, leaving nothing behind.

The demo's own evaluation set runs here on the offline backend with the
thresholds CI holds it to (docs/retrieval.md). The model path runs against
the project's OpenAI-compatible test server, with scripted answers.
"""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import caches
from django.core.management import CommandError, call_command

from sophie_chat import db, metrics
from sophie_chat.evaluation import percentile
from sophie_chat.models import (
    ChatAnalytics,
    ChatMessage,
    ChatSession,
    KnowledgeBaseEntry,
    TokenUsage,
    UnansweredQuestion,
)
from tests.support.openai_server import API_KEY, FakeOpenAIServer, _usage, split_into_deltas
from tests.support.overrides import settings_with

pytestmark = pytest.mark.django_db(transaction=True)

DEMO = Path(__file__).resolve().parents[2] / "example_project" / "knowledge"
OFFLINE = {"BACKEND": "sophie_chat.llm.offline.OfflineBackend", "OPTIONS": {"delay": 0}}
#: What CI holds the demo to (issue 15): recall@1, out of scope declined, in scope declined.
DEMO_THRESHOLDS = [
    "--min-recall-at-1",
    "0.9",
    "--min-decline-recall",
    "0.9",
    "--max-in-scope-declined",
    "0.1",
]


@pytest.fixture(autouse=True)
def _database_threads_let_go():
    yield
    # The turns query from Sophie's database threads; let their connections
    # go so that the test database can be flushed.
    db.reset_database_threads(wait=True)


def evaluate(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("evaluate_sophie", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def write_cases(tmp_path: Path, cases: list[dict]) -> str:
    path = tmp_path / "cases.json"
    path.write_text(json.dumps(cases), encoding="utf-8")
    return str(path)


def nothing_stored() -> None:
    assert ChatSession.objects.count() == 0
    assert ChatMessage.objects.count() == 0
    assert ChatAnalytics.objects.count() == 0
    assert UnansweredQuestion.objects.count() == 0
    assert TokenUsage.objects.count() == 0
    # No cached answer, no rate limit counter, no turn lock.
    assert not caches["default"]._cache


@pytest.fixture
def demo_knowledge():
    call_command("populate_knowledge_base", str(DEMO / "home_services.json"), verbosity=0)


@pytest.fixture
def cleaning_entry():
    KnowledgeBaseEntry.objects.create(
        question="How much does a house cleaning cost?",
        answer="A standard cleaning costs R$ 150.",
        keywords=["cleaning", "price"],
        locale="en",
        url="/cleaning/",
    )


# -- the demo, on the offline backend, as CI runs it ----------------------------------


def test_the_demos_evaluation_meets_its_thresholds_on_the_offline_backend(
    demo_knowledge, tmp_path
):
    report_file = tmp_path / "report.json"
    with settings_with(LLM=OFFLINE):
        out, _err = evaluate(
            str(DEMO / "evaluation.yaml"), *DEMO_THRESHOLDS, "--json", str(report_file)
        )

    report = json.loads(report_file.read_text(encoding="utf-8"))
    assert report["cases"] >= 80
    assert report["recall_at_1"] >= 0.9
    assert report["decline_recall"] >= 0.9
    assert report["in_scope_declined"] <= 0.1
    assert report["models"] == ["offline"]
    assert report["errors"] == 0
    assert all(threshold["met"] for threshold in report["thresholds"].values())
    assert "retrieval recall@1" in out
    assert ">= 0.9 met" in out
    nothing_stored()


def test_the_issues_examples_are_answered_or_declined(demo_knowledge, tmp_path):
    cases = write_cases(
        tmp_path,
        [
            {
                "question": "Do you work in Curitiba?",
                "expect_entries": ["Which cities do you cover?"],
                "facts": ["Curitiba"],
            },
            {"question": "Do you clean swimming pools?", "decline": True},
            {"question": "Vocês fazem limpeza de piscina?", "locale": "pt-br", "decline": True},
            {"question": "I want to talk to a human", "decline": True},
            {"question": "Quero falar com um humano", "locale": "pt-br", "decline": True},
            {
                "question": "and how much is it?",
                "history": ["do you fix leaking taps?"],
                "expect_entries": ["Do you offer plumbing services?"],
                "facts": ["R$ 90"],
            },
            {
                "question": "e quanto custa?",
                "locale": "pt-br",
                "history": ["vocês consertam vazamento?"],
                "expect_entries": ["Vocês fazem serviços de encanador?"],
                "facts": ["R$ 90"],
            },
        ],
    )
    with settings_with(LLM=OFFLINE):
        evaluate(
            cases,
            "--min-recall-at-1",
            "1",
            "--min-fact-coverage",
            "1",
            "--min-decline-precision",
            "1",
            "--min-decline-recall",
            "1",
        )


# -- what it reports --------------------------------------------------------------------


def test_thresholds_not_met_exit_with_status_1_and_say_which(demo_knowledge, tmp_path):
    cases = write_cases(
        tmp_path,
        [
            {"question": "Do you clean swimming pools?", "expect_entries": ["Pools"]},
            {"question": "Which cities do you cover?", "decline": True},
        ],
    )
    with settings_with(LLM=OFFLINE), pytest.raises(CommandError) as raised:
        evaluate(cases, "--min-recall-at-1", "0.5", "--min-decline-recall", "0.5")

    assert raised.value.returncode == 1
    message = str(raised.value)
    assert "retrieval recall@1 0 (>= 0.5)" in message
    assert "decline recall 0 (>= 0.5)" in message


def test_the_json_report_may_go_to_standard_output(cleaning_entry, tmp_path):
    cases = write_cases(
        tmp_path,
        [
            {
                "question": "How much is a house cleaning?",
                "expect_entries": ["How much does a house cleaning cost?"],
                "facts": ["R$ 150", "R$ 999"],
            },
            {"question": "Do you repair pianos?", "decline": True},
        ],
    )
    with settings_with(LLM=OFFLINE):
        out, _err = evaluate(cases, "--json", "-")

    report = json.loads(out)
    assert (report["cases"], report["in_scope"], report["out_of_scope"]) == (2, 1, 1)
    assert report["recall_at_1"] == report["sources_precision"] == 1.0
    assert report["fact_coverage"] == 0.5
    assert (report["decline_precision"], report["decline_recall"]) == (1.0, 1.0)
    assert report["failures"] == [
        {
            "question": "How much is a house cleaning?",
            "locale": "en",
            "history": [],
            "problems": ["facts missing: 'R$ 999'"],
            "answer": "A standard cleaning costs R$ 150.",
            "hits": ["How much does a house cleaning cost?"],
            "sources": ["How much does a house cleaning cost?"],
        }
    ]
    assert report["latency_ms"]["p95"] >= report["latency_ms"]["p50"] >= 0
    assert report["tokens"]["completion"] > 0
    # The offline backend has no price.
    assert report["cost"] is None


def test_failures_are_listed_on_request(cleaning_entry, tmp_path):
    cases = write_cases(tmp_path, [{"question": "Do you repair pianos?", "expect_entries": ["x"]}])
    with settings_with(LLM=OFFLINE):
        out, _err = evaluate(cases, "--failures")

    assert "Cases with problems (1):" in out
    assert "'Do you repair pianos?' (en)" in out
    assert "declined a question the knowledge base answers" in out


def test_progress_goes_to_standard_error_when_asked(cleaning_entry, tmp_path):
    cases = write_cases(
        tmp_path,
        [{"question": f"Do you repair pianos {n}?", "decline": True} for n in range(3)],
    )
    with settings_with(LLM=OFFLINE):
        out, err = evaluate(cases, "--progress", "--concurrency", "2")
        _quiet_out, quiet_err = evaluate(cases)

    assert "[3/3] ok" in err
    assert "[3/3]" not in out
    assert quiet_err == ""


def test_a_bad_case_file_exits_with_status_2(tmp_path):
    path = tmp_path / "cases.yaml"
    path.write_text("- {question: typo, declin: true}\n", encoding="utf-8")

    with pytest.raises(CommandError) as raised:
        evaluate(str(path))

    assert raised.value.returncode == 2
    assert "case 1: unknown field(s) 'declin'" in str(raised.value)


def test_an_unknown_user_exits_with_status_2_before_any_turn(tmp_path):
    cases = write_cases(tmp_path, [{"question": "hi", "user": "nobody", "decline": True}])

    with pytest.raises(CommandError) as raised:
        evaluate(cases)

    assert raised.value.returncode == 2
    assert "No such user: 'nobody'" in str(raised.value)


def test_a_case_is_asked_as_its_user(cleaning_entry, tmp_path):
    get_user_model().objects.create_user(username="ana", password="x", first_name="Ana")
    cases = write_cases(
        tmp_path, [{"question": "What is my name?", "user": "ana", "expect_entries": ["x"]}]
    )
    with FakeOpenAIServer() as server, settings_with(LLM=openai_llm(server)):
        evaluate(cases)

    system = server.requests[0].body["messages"][0]["content"]
    assert "Ana" in system
    nothing_stored()


def test_percentiles_are_nearest_rank():
    values = list(range(1, 101))
    assert (percentile(values, 0.5), percentile(values, 0.95)) == (50, 95)
    assert percentile([7], 0.95) == 7
    assert percentile([], 0.5) is None


# -- the model path, against the OpenAI-compatible test server ---------------------------


def openai_llm(server: FakeOpenAIServer) -> dict:
    return {
        "BACKEND": "sophie_chat.llm.openai.OpenAIBackend",
        "OPTIONS": {
            "api_key": API_KEY,
            "base_url": server.url,
            "model": "gpt-4o-mini",
            "max_retries": 0,
            "timeout": 5,
        },
    }


def test_a_model_is_measured_on_facts_declines_tokens_and_cost(cleaning_entry, tmp_path):
    cases = write_cases(
        tmp_path,
        [
            {
                "question": "How much is a house cleaning?",
                "expect_entries": ["How much does a house cleaning cost?"],
                "facts": ["R$ 150"],
            },
            {
                "question": "and a deep cleaning?",
                "history": ["How much is a house cleaning?"],
                "expect_entries": ["How much does a house cleaning cost?"],
                "facts": ["R$ 280"],
            },
            {"question": "Do you clean swimming pools?", "decline": True},
            {"question": "Quero falar com um humano", "locale": "pt-br", "decline": True},
        ],
    )
    prices = {"gpt-4o-mini": {"input": 1.0, "output": 2.0}}
    replies = [
        "A standard cleaning costs R$ 150.",
        "A standard cleaning costs R$ 150.",  # the follow-up's earlier turn
        "Sorry, I can't tell you that price.",  # a fact missed, not a decline
        "I don't know: we have nothing about swimming pools.",
        "Não sei responder isso, desculpe.",
    ]
    with FakeOpenAIServer() as server, settings_with(LLM=openai_llm(server), MODEL_PRICES=prices):
        for reply in replies:
            server.reply(reply)
        out, _err = evaluate(cases, "--json", "-")

    report = json.loads(out)
    assert report["models"] == ["gpt-4o-mini"]
    assert report["turns"] == 5 == len(server.requests)
    assert report["fact_coverage"] == 0.5
    assert (report["decline_precision"], report["decline_recall"]) == (1.0, 1.0)
    assert report["in_scope_declined"] == 0.0
    prompt = sum(_usage(request.body, 0)["prompt_tokens"] for request in server.requests)
    completion = sum(len(split_into_deltas(reply)) for reply in replies)
    assert report["tokens"] == {
        "prompt": prompt,
        "completion": completion,
        "total": prompt + completion,
    }
    assert float(report["cost"]) == pytest.approx((prompt * 1.0 + completion * 2.0) / 1e6)
    # A model declining names no source; one answering names the entry found.
    failures = {failure["question"]: failure for failure in report["failures"]}
    assert list(failures) == ["and a deep cleaning?"]
    assert failures["and a deep cleaning?"]["sources"] == ["How much does a house cleaning cost?"]
    nothing_stored()


def test_a_failing_model_is_reported_without_metrics_or_records(cleaning_entry, tmp_path):
    cases = write_cases(
        tmp_path,
        [
            {
                "question": "How much is a house cleaning?",
                "expect_entries": ["How much does a house cleaning cost?"],
                "facts": ["R$ 150"],
            }
        ],
    )
    errors = _model_errors()
    with FakeOpenAIServer() as server, settings_with(LLM=openai_llm(server)):
        server.error(500)
        out, _err = evaluate(cases, "--json", "-")

    report = json.loads(out)
    assert (report["errors"], report["fallbacks"]) == (0, 1)
    # The fallback answers with the entry that answers the question.
    assert report["fact_coverage"] == 1.0
    assert _model_errors() == errors
    nothing_stored()


def _model_errors() -> float:
    if not metrics.available():
        return 0.0
    import prometheus_client

    return (
        prometheus_client.REGISTRY.get_sample_value(
            "sophie_chat_model_errors_total", {"error": "LLMUnavailable"}
        )
        or 0.0
    )


def test_no_tool_is_offered_during_an_evaluation(cleaning_entry, tmp_path):
    cases = write_cases(
        tmp_path,
        [
            {
                "question": "How much is a house cleaning?",
                "expect_entries": ["How much does a house cleaning cost?"],
            }
        ],
    )
    with (
        FakeOpenAIServer() as server,
        settings_with(LLM=openai_llm(server), TOOLS=["tests.support.tools.add"]),
    ):
        server.reply("A standard cleaning costs R$ 150.")
        evaluate(cases, "--json", "-")
        [request] = server.chat_requests
    assert "tools" not in request.body
