"""Prometheus metrics: recorded by real conversations, served at chat/metrics/,
added up across processes, and a no-op without prometheus_client."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from django.test import override_settings

from sophie_chat import metrics

prometheus_client = pytest.importorskip("prometheus_client")
pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parent.parent
BASE = {"LLM": {"BACKEND": "sophie_chat.llm.dummy.DummyBackend"}}
ENDPOINT = {**BASE, "METRICS": {"ENDPOINT": True, "TOKEN": "s3cret"}}


def sample(name: str, **labels: str) -> float:
    return prometheus_client.REGISTRY.get_sample_value(name, labels) or 0.0


async def test_a_conversation_counts_connections_turns_latency_and_tokens(connect, dummy_llm):
    before = {
        "accepted": sample("sophie_chat_connections_total", outcome="accepted"),
        "turns": sample("sophie_chat_turns_total", outcome="model"),
        "latency": sample("sophie_chat_response_seconds_count", source="model"),
        "tokens": sample("sophie_chat_tokens_total", model="dummy", kind="completion"),
        "open": sample("sophie_chat_open_connections"),
    }
    dummy_llm.enqueue("Three little words.")
    client, _ = await connect()
    await client.start()
    frames = await client.ask("Hello?")
    assert frames[-1]["type"] == "stream_end", frames

    assert sample("sophie_chat_connections_total", outcome="accepted") == before["accepted"] + 1
    assert sample("sophie_chat_open_connections") == before["open"] + 1
    assert sample("sophie_chat_turns_total", outcome="model") == before["turns"] + 1
    assert sample("sophie_chat_response_seconds_count", source="model") == before["latency"] + 1
    assert (
        sample("sophie_chat_tokens_total", model="dummy", kind="completion") == before["tokens"] + 3
    )
    await client.close()
    assert sample("sophie_chat_open_connections") == before["open"]


async def test_error_frames_are_counted_by_code(connect):
    before = sample("sophie_chat_errors_total", code="invalid_json")
    client, _ = await connect()
    await client.send("not json")
    await client.receive()

    assert sample("sophie_chat_errors_total", code="invalid_json") == before + 1


async def test_model_failures_are_counted_by_error(connect, dummy_llm):
    from sophie_chat.llm.base import LLMUnavailable

    before = sample("sophie_chat_model_errors_total", error="LLMUnavailable")
    fallback_before = sample("sophie_chat_turns_total", outcome="fallback")
    dummy_llm.enqueue_error(LLMUnavailable("down"))
    client, _ = await connect()
    await client.start()
    await client.ask("Hello?")

    assert sample("sophie_chat_model_errors_total", error="LLMUnavailable") == before + 1
    assert sample("sophie_chat_turns_total", outcome="fallback") == fallback_before + 1


async def test_metrics_turned_off_record_nothing(connect, dummy_llm, settings):
    settings.SOPHIE_CHAT = {**BASE, "METRICS": {"ENABLED": False}}
    before = sample("sophie_chat_turns_total", outcome="model")
    dummy_llm.enqueue("Hi.")
    client, _ = await connect()
    await client.start()
    await client.ask("Hello?")

    assert sample("sophie_chat_turns_total", outcome="model") == before


def test_endpoint_is_not_found_unless_enabled(client):
    assert client.get("/chat/metrics/").status_code == 404


@override_settings(SOPHIE_CHAT=ENDPOINT)
def test_endpoint_refuses_a_scraper_without_the_token(client):
    assert client.get("/chat/metrics/").status_code == 403
    assert client.get("/chat/metrics/", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403


@override_settings(SOPHIE_CHAT=ENDPOINT)
def test_endpoint_serves_metrics_to_a_scraper_with_the_token(client):
    metrics.error_sent("invalid_message")

    response = client.get("/chat/metrics/", HTTP_AUTHORIZATION="Bearer s3cret")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    assert 'sophie_chat_errors_total{code="invalid_message"}' in response.content.decode()


@override_settings(SOPHIE_CHAT={**BASE, "METRICS": {"ENDPOINT": True}})
def test_endpoint_serves_metrics_to_staff(admin_client):
    assert admin_client.get("/chat/metrics/").status_code == 200


def test_without_prometheus_client_every_function_is_a_no_op(monkeypatch, client, settings):
    monkeypatch.setattr(metrics, "prometheus_client", None)
    settings.SOPHIE_CHAT = ENDPOINT

    metrics.connection_opened()
    metrics.error_sent("rate_limited")
    metrics.answer_stored(
        status="complete",
        metadata={},
        first_token_ms=1,
        total_ms=2,
        prompt_tokens=3,
        completion_tokens=4,
    )

    assert not metrics.enabled()
    assert client.get("/chat/metrics/", HTTP_AUTHORIZATION="Bearer s3cret").status_code == 404


def _python(code: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=ROOT,
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'src'}",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_sophie_chat_imports_and_runs_without_prometheus_client():
    result = _python(
        """
        import sys
        sys.modules["prometheus_client"] = None  # as if not installed
        import django
        django.setup()
        from sophie_chat import metrics
        metrics.connection_opened()
        metrics.error_sent("invalid_json")
        print(metrics.available(), metrics.enabled())
        """,
        {},
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "False"]


def test_several_processes_add_up_through_the_multiprocess_directory(tmp_path, monkeypatch):
    record = """
        import django
        django.setup()
        from sophie_chat import metrics
        metrics.connection_opened()
        metrics.error_sent("rate_limited")
        metrics.answer_stored(status="complete", metadata={"model": "m"}, first_token_ms=100,
                              total_ms=800, prompt_tokens=10, completion_tokens=5)
        """
    for _ in range(2):
        result = _python(record, {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path)})
        assert result.returncode == 0, result.stderr
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))

    body, _content_type = metrics.exposition()

    text = body.decode()
    assert 'sophie_chat_errors_total{code="rate_limited"} 2.0' in text
    assert 'sophie_chat_tokens_total{kind="prompt",model="m"} 20.0' in text
    assert 'sophie_chat_response_seconds_count{source="model"} 2.0' in text
    assert 'sophie_chat_connections_total{outcome="accepted"} 2.0' in text
