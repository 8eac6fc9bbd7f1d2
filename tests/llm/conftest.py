"""Fixtures for the language model backends' tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from sophie_chat.llm.openai import OpenAIBackend
from tests.support.openai_server import API_KEY, FakeOpenAIServer


@pytest.fixture
def openai_server() -> Iterator[FakeOpenAIServer]:
    """A started OpenAI-compatible server on 127.0.0.1, stopped after the test."""
    with FakeOpenAIServer() as server:
        yield server


@pytest.fixture(params=["httpx", "aiohttp"])
async def make_openai_backend(
    request: pytest.FixtureRequest,
    openai_server: FakeOpenAIServer,
) -> AsyncIterator[Callable[..., OpenAIBackend]]:
    """Build OpenAIBackends pointed at ``openai_server`` (closed after the test).

    Every test using it runs with each of the SDK's HTTP transports.
    Defaults keep failing tests fast: no retries and a short timeout.
    """
    built: list[OpenAIBackend] = []

    def make(**options: Any) -> OpenAIBackend:
        options = {
            "api_key": API_KEY,
            "base_url": openai_server.url,
            "max_retries": 0,
            "timeout": 5,
            "http_client": request.param,
            **options,
        }
        backend = OpenAIBackend(**options)
        built.append(backend)
        return backend

    yield make
    for backend in built:
        await backend.aclose()
