"""DummyBackend: the scripted test double documented for host sites' tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from django.test import override_settings

from sophie_chat import backends
from sophie_chat.llm.base import (
    LLMChunk,
    LLMRequest,
    LLMTimeout,
    LLMUnavailable,
    PromptMessage,
    Usage,
)
from sophie_chat.llm.dummy import DummyBackend


def ask(question: str = "What are your opening hours?") -> LLMRequest:
    return LLMRequest(
        messages=(PromptMessage("system", "Be brief."), PromptMessage("user", question)),
    )


async def collect(backend: DummyBackend, request: LLMRequest | None = None) -> list[LLMChunk]:
    return [chunk async for chunk in backend.stream(request or ask())]


def text_of(chunks: list[LLMChunk]) -> str:
    return "".join(chunk.delta for chunk in chunks)


async def read_into(received: list[str], stream: AsyncIterator[LLMChunk]) -> None:
    """Append each delta to ``received`` as it arrives (kept when the stream fails)."""
    async for chunk in stream:
        received.append(chunk.delta)


async def test_queued_replies_are_streamed_in_order():
    backend = DummyBackend()
    backend.enqueue("First answer.", "Second answer.")

    first = await backend.complete(ask())
    second = await backend.complete(ask())

    assert (first, second) == ("First answer.", "Second answer.")


async def test_default_reply_is_streamed_when_the_queue_is_empty():
    backend = DummyBackend(default_reply="Always this.")
    backend.enqueue("Once.")

    await backend.complete(ask())

    assert await backend.complete(ask()) == "Always this."


async def test_deltas_join_to_exactly_the_reply_text():
    backend = DummyBackend()
    backend.enqueue("  Spaces  are kept,\nnew lines too. ")

    chunks = await collect(backend)

    assert text_of(chunks) == "  Spaces  are kept,\nnew lines too. "
    assert len([chunk for chunk in chunks if chunk.delta]) > 1


async def test_final_chunk_reports_usage_model_and_finish_reason():
    backend = DummyBackend(model="scripted-1")
    backend.enqueue("three word reply")

    *deltas, final = await collect(backend)

    assert all(chunk.usage is None and chunk.model == "scripted-1" for chunk in deltas)
    assert final.usage == Usage(prompt_tokens=7, completion_tokens=3)
    assert final.model == "scripted-1"
    assert final.finish_reason == "stop"
    assert final.delta == ""


async def test_queued_error_is_raised_before_any_delta():
    backend = DummyBackend()
    backend.enqueue_error(LLMTimeout())
    received: list[str] = []

    with pytest.raises(LLMTimeout):
        await read_into(received, backend.stream(ask()))

    assert received == []


async def test_error_after_streams_that_many_deltas_then_raises():
    backend = DummyBackend()
    backend.enqueue_error(LLMUnavailable(), text="one two three four", after=2)
    received: list[str] = []

    with pytest.raises(LLMUnavailable):
        await read_into(received, backend.stream(ask()))

    assert received == ["one", " two"]


async def test_queued_error_is_consumed_in_turn():
    backend = DummyBackend(default_reply="Back to normal.")
    backend.enqueue("Fine.")
    backend.enqueue_error(LLMUnavailable())

    assert await backend.complete(ask()) == "Fine."
    with pytest.raises(LLMUnavailable):
        await backend.complete(ask())
    assert await backend.complete(ask()) == "Back to normal."


async def test_requests_are_recorded_in_order():
    backend = DummyBackend()

    await backend.complete(ask("Do you clean ovens?"))
    await backend.complete(ask("And windows?"))

    assert [r.messages[-1].content for r in backend.requests] == [
        "Do you clean ovens?",
        "And windows?",
    ]


async def test_a_request_that_fails_is_recorded_too():
    backend = DummyBackend()
    backend.enqueue_error(LLMTimeout())

    with pytest.raises(LLMTimeout):
        await backend.complete(ask("Is anyone there?"))

    assert backend.requests[-1].messages[-1].content == "Is anyone there?"


async def test_reset_forgets_queued_replies_and_requests():
    backend = DummyBackend(default_reply="Default.")
    backend.enqueue("Queued.")
    await backend.complete(ask())
    backend.enqueue("Never streamed.")

    backend.reset()

    assert backend.requests == []
    assert await backend.complete(ask()) == "Default."


async def test_stream_closed_before_its_end_is_counted():
    backend = DummyBackend()
    backend.enqueue("one two three")
    stream = backend.stream(ask())

    await anext(stream)
    await stream.aclose()

    assert backend.closed_early == 1


async def test_stream_read_to_its_end_is_not_counted_as_closed_early():
    backend = DummyBackend()

    await backend.complete(ask())

    assert backend.closed_early == 0


async def test_cancelled_consumer_is_counted_as_closed_early():
    backend = DummyBackend(delay=0.05)
    backend.enqueue("one two three four five")
    started = asyncio.Event()

    async def consume() -> None:
        async for _chunk in backend.stream(ask()):
            started.set()

    task = asyncio.create_task(consume())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert backend.closed_early == 1


async def test_first_token_delay_holds_back_the_first_delta():
    backend = DummyBackend(first_token_delay=0.1)
    stream = backend.stream(ask())
    started = time.monotonic()

    await anext(stream)

    assert time.monotonic() - started >= 0.09
    await stream.aclose()


def test_dummy_backend_makes_no_network_calls():
    assert DummyBackend.uses_network is False


def test_settings_build_a_dummy_backend_with_its_options():
    llm_setting = {
        "BACKEND": "sophie_chat.llm.dummy.DummyBackend",
        "OPTIONS": {"default_reply": "From settings.", "model": "test-model"},
    }

    with override_settings(SOPHIE_CHAT={"LLM": llm_setting}):
        backend = backends.llm()

    assert isinstance(backend, DummyBackend)
    assert backend.default_reply == "From settings."
    assert backend.model_name == "test-model"


async def test_a_scripted_reply_may_call_tools():
    model = DummyBackend()
    calls = model.enqueue_tool_calls(
        ("add", {"a": 1, "b": 2}), ("broken", "{not json"), text="Let me see."
    )
    model.enqueue("Three.")
    chunks = [chunk async for chunk in model.stream(LLMRequest(messages=()))]
    assert "".join(chunk.delta for chunk in chunks) == "Let me see."
    called = [call for chunk in chunks for call in chunk.tool_calls]
    assert [(call.name, call.arguments) for call in called] == [
        ("add", '{"a": 1, "b": 2}'),
        ("broken", "{not json"),
    ]
    assert called == calls
    assert calls[0].id != calls[1].id
    assert chunks[-1].finish_reason == "tool_calls"
    answer = [chunk async for chunk in model.stream(LLMRequest(messages=()))]
    assert "".join(chunk.delta for chunk in answer) == "Three."
    assert not any(chunk.tool_calls for chunk in answer)
