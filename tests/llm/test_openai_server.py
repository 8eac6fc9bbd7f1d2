"""The fake OpenAI server itself: as the process end-to-end tests and the benchmark run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sophie_chat.llm.base import LLMRateLimited, LLMRequest, PromptMessage
from sophie_chat.llm.openai import OpenAIBackend
from tests.support.openai_server import FakeOpenAIProcess, split_into_deltas, start_fake_openai


@pytest.fixture
def server_process(tmp_path: Path) -> Iterator[FakeOpenAIProcess]:
    """``python -m tests.support.openai_server`` on a free port, without an API key."""
    server = start_fake_openai(tmp_path, reply="From a process", api_key=None)
    yield server
    server.stop()


def ask() -> LLMRequest:
    return LLMRequest(messages=(PromptMessage("user", "Hello?"),))


async def complete(url: str) -> str:
    backend = OpenAIBackend(api_key="sk-test", base_url=url, max_retries=0)
    try:
        return await backend.complete(ask())
    finally:
        await backend.aclose()


@pytest.mark.server
async def test_server_process_streams_its_default_reply(server_process):
    assert server_process.url.endswith("/v1")
    assert await complete(server_process.url) == "From a process"


@pytest.mark.server
async def test_server_process_is_scripted_over_http(server_process):
    server_process.queue("rate_limit", retry_after=3)

    with pytest.raises(LLMRateLimited):
        await complete(server_process.url)

    recorded = server_process.chat_requests()
    assert recorded[-1]["body"]["messages"] == [{"role": "user", "content": "Hello?"}]


@pytest.mark.server
async def test_server_process_default_reply_can_be_changed(server_process):
    server_process.set_default(text="A new default.")

    assert await complete(server_process.url) == "A new default."
    assert await complete(server_process.url) == "A new default."


def test_deltas_split_from_a_text_join_back_to_it():
    text = "  Leading, double  spaces\nand a trailing one "

    assert "".join(split_into_deltas(text)) == text
    assert split_into_deltas("") == []
