"""The fake OpenAI server as a separate process (what end-to-end tests run)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from sophie_chat.llm.base import LLMRateLimited, LLMRequest, PromptMessage
from sophie_chat.llm.openai import OpenAIBackend
from tests.openai_server import split_into_deltas

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def server_process() -> Iterator[str]:
    """``python -m tests.openai_server`` on a free port; yields its base URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.openai_server", "--port", "0", "--reply", "From a process"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    watchdog = threading.Timer(15, process.kill)
    watchdog.start()
    try:
        line = process.stdout.readline()
        watchdog.cancel()
        assert line.startswith("listening on http://127.0.0.1:"), line
        yield line.removeprefix("listening on ").strip()
    finally:
        watchdog.cancel()
        process.terminate()
        process.wait(timeout=10)
        process.stdout.close()


def post_json(url: str, payload: object) -> object:
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.load(response)


def ask() -> LLMRequest:
    return LLMRequest(messages=(PromptMessage("user", "Hello?"),))


@pytest.mark.server
async def test_server_process_streams_its_default_reply(server_process):
    assert server_process.endswith("/v1")
    backend = OpenAIBackend(api_key="sk-test", base_url=server_process, max_retries=0)
    try:
        assert await backend.complete(ask()) == "From a process"
    finally:
        await backend.aclose()


@pytest.mark.server
async def test_server_process_is_scripted_over_http(server_process):
    control = server_process.removesuffix("/v1") + "/_fake"
    post_json(f"{control}/queue", {"kind": "rate_limit", "retry_after": 3})
    backend = OpenAIBackend(api_key="sk-test", base_url=server_process, max_retries=0)
    try:
        with pytest.raises(LLMRateLimited):
            await backend.complete(ask())
    finally:
        await backend.aclose()

    with urllib.request.urlopen(f"{control}/requests", timeout=5) as response:
        recorded = json.load(response)
    assert recorded[-1]["body"]["messages"] == [{"role": "user", "content": "Hello?"}]


def test_deltas_split_from_a_text_join_back_to_it():
    text = "  Leading, double  spaces\nand a trailing one "

    assert "".join(split_into_deltas(text)) == text
    assert split_into_deltas("") == []
