"""OpenAIBackend through the real ``openai`` SDK, over HTTP, to a local fake server."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

import openai
import pytest
from django.test import override_settings

from sophie_chat import backends
from sophie_chat.llm import openai as openai_backend
from sophie_chat.llm.base import (
    LLMChunk,
    LLMRateLimited,
    LLMRequest,
    LLMTimeout,
    LLMUnavailable,
    PromptMessage,
    Usage,
)
from sophie_chat.llm.openai import OpenAIBackend, retry_after_seconds
from tests.support.network import free_port
from tests.support.openai_server import API_KEY, FakeOpenAIServer

QUESTION = "How do I book a cleaning for Friday?"


def ask(question: str = QUESTION, **kwargs) -> LLMRequest:
    return LLMRequest(
        messages=(
            PromptMessage("system", "You are Sophie, a helpful assistant."),
            PromptMessage("user", question),
        ),
        **kwargs,
    )


async def collect(backend: OpenAIBackend, request: LLMRequest | None = None) -> list[LLMChunk]:
    return [chunk async for chunk in backend.stream(request or ask())]


def text_of(chunks: list[LLMChunk]) -> str:
    return "".join(chunk.delta for chunk in chunks)


async def read_into(received: list[str], stream: AsyncIterator[LLMChunk]) -> None:
    """Append each delta to ``received`` as it arrives (kept when the stream fails)."""
    async for chunk in stream:
        received.append(chunk.delta)


# Streaming ------------------------------------------------------------------


async def test_streamed_deltas_join_to_the_reply(openai_server, make_openai_backend):
    openai_server.reply("Open the app,  pick Friday and confirm.")

    chunks = await collect(make_openai_backend())

    assert text_of(chunks) == "Open the app,  pick Friday and confirm."


async def test_reply_arrives_as_several_non_empty_deltas(openai_server, make_openai_backend):
    openai_server.reply("One two three four")

    chunks = await collect(make_openai_backend())

    deltas = [chunk.delta for chunk in chunks if chunk.usage is None]
    assert deltas == ["One ", "two ", "three ", "four"]


async def test_first_delta_is_yielded_before_the_stream_ends(openai_server, make_openai_backend):
    openai_server.reply("Quick then slow slow slow", token_delay=0.3)
    stream = make_openai_backend().stream(ask())

    first = await anext(stream)
    first_at = time.monotonic()
    rest = [chunk async for chunk in stream]
    ended_at = time.monotonic()

    assert first.delta == "Quick "
    # The server needs 4 x 0.3 s for the rest of the answer: even a first
    # delta read late on a busy machine comes well before the end.
    assert ended_at - first_at >= 0.3
    assert text_of([first, *rest]) == "Quick then slow slow slow"


async def test_usage_model_and_finish_reason_come_in_a_final_chunk(
    openai_server, make_openai_backend
):
    openai_server.reply("Four words in reply", model="gpt-4o-mini-2024-07-18")

    chunks = await collect(make_openai_backend())

    *deltas, final = chunks
    assert all(chunk.usage is None for chunk in deltas)
    assert final.usage == Usage(prompt_tokens=14, completion_tokens=4)
    assert final.model == "gpt-4o-mini-2024-07-18"
    assert final.finish_reason == "stop"
    assert final.delta == ""


async def test_stream_usage_off_sends_no_stream_options_and_reports_no_usage(
    openai_server, make_openai_backend
):
    openai_server.reply("No usage here")

    chunks = await collect(make_openai_backend(stream_usage=False))

    assert "stream_options" not in openai_server.last_request.body
    assert text_of(chunks) == "No usage here"
    assert all(chunk.usage is None for chunk in chunks)


async def test_complete_returns_the_whole_answer(openai_server, make_openai_backend):
    openai_server.reply("All of it.")

    assert await make_openai_backend().complete(ask()) == "All of it."


# What reaches the server ----------------------------------------------------


async def test_prompt_messages_reach_the_server(openai_server, make_openai_backend):
    await collect(make_openai_backend())

    assert openai_server.last_request.body["messages"] == [
        {"role": "system", "content": "You are Sophie, a helpful assistant."},
        {"role": "user", "content": QUESTION},
    ]


async def test_model_temperature_and_max_tokens_reach_the_server(
    openai_server, make_openai_backend
):
    await collect(make_openai_backend(model="llama3.2", temperature=0.7, max_tokens=123))

    body = openai_server.last_request.body
    assert body["model"] == "llama3.2"
    assert body["temperature"] == 0.7
    assert body["max_tokens"] == 123
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}


async def test_request_max_tokens_wins_over_the_option(openai_server, make_openai_backend):
    await collect(make_openai_backend(max_tokens=500), ask(max_tokens=42))

    assert openai_server.last_request.body["max_tokens"] == 42


async def test_none_temperature_and_max_tokens_are_left_to_the_server(
    openai_server, make_openai_backend
):
    await collect(make_openai_backend(temperature=None, max_tokens=None))

    body = openai_server.last_request.body
    assert "temperature" not in body
    assert "max_tokens" not in body


async def test_extra_body_fields_reach_the_server(openai_server, make_openai_backend):
    await collect(make_openai_backend(extra_body={"max_completion_tokens": 800, "seed": 7}))

    body = openai_server.last_request.body
    assert body["max_completion_tokens"] == 800
    assert body["seed"] == 7


async def test_api_key_is_sent_as_bearer_token(openai_server, make_openai_backend):
    await collect(make_openai_backend(api_key="sk-my-key"))

    assert openai_server.last_request.authorization == "Bearer sk-my-key"


async def test_api_key_is_read_from_the_environment(
    openai_server, make_openai_backend, monkeypatch
):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")

    await collect(make_openai_backend(api_key=None))

    assert openai_server.last_request.authorization == "Bearer sk-from-env"


async def test_base_url_is_read_from_the_environment(openai_server, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", openai_server.url)
    backend = OpenAIBackend(api_key=API_KEY, max_retries=0)
    try:
        assert await backend.complete(ask()) == openai_server.default.text
    finally:
        await backend.aclose()


# Failures -------------------------------------------------------------------


async def test_server_error_raises_llm_unavailable(openai_server, make_openai_backend):
    openai_server.error(500)

    with pytest.raises(LLMUnavailable) as excinfo:
        await collect(make_openai_backend(max_retries=0))

    assert isinstance(excinfo.value.cause, openai.InternalServerError)
    assert len(openai_server.chat_requests) == 1


async def test_server_error_is_retried_up_to_max_retries(openai_server, make_openai_backend):
    # retry-after-ms keeps the SDK's back-off short.
    openai_server.error(500, headers={"retry-after-ms": "10"})
    openai_server.reply("Second time lucky.")

    chunks = await collect(make_openai_backend(max_retries=1))

    assert text_of(chunks) == "Second time lucky."
    assert len(openai_server.chat_requests) == 2


async def test_other_http_error_raises_llm_unavailable(openai_server, make_openai_backend):
    openai_server.error(400, "Unsupported parameter: 'temperature'.")

    with pytest.raises(LLMUnavailable) as excinfo:
        await collect(make_openai_backend())

    assert isinstance(excinfo.value.cause, openai.BadRequestError)


async def test_rejected_api_key_raises_llm_unavailable(make_openai_backend):
    with FakeOpenAIServer(api_key="sk-right") as server:
        backend = make_openai_backend(base_url=server.url, api_key="sk-wrong")

        with pytest.raises(LLMUnavailable) as excinfo:
            await collect(backend)

    assert isinstance(excinfo.value.cause, openai.AuthenticationError)


async def test_rate_limit_raises_llm_rate_limited_with_retry_after(
    openai_server, make_openai_backend
):
    openai_server.rate_limit(retry_after=7)

    with pytest.raises(LLMRateLimited) as excinfo:
        await collect(make_openai_backend(max_retries=0))

    assert excinfo.value.retry_after == 7.0
    assert isinstance(excinfo.value.cause, openai.RateLimitError)


async def test_rate_limit_without_retry_after_has_none(openai_server, make_openai_backend):
    openai_server.rate_limit(retry_after=None)

    with pytest.raises(LLMRateLimited) as excinfo:
        await collect(make_openai_backend(max_retries=0))

    assert excinfo.value.retry_after is None


def test_retry_after_is_read_from_seconds_milliseconds_or_a_date():
    assert retry_after_seconds({"retry-after": "3"}) == 3.0
    assert retry_after_seconds({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    assert retry_after_seconds({"retry-after": "Thu, 01 Jan 1970 00:00:00 GMT"}) == 0.0
    assert retry_after_seconds({"retry-after": "soon"}) is None
    assert retry_after_seconds({}) is None


async def test_server_that_does_not_answer_in_time_raises_llm_timeout(
    openai_server, make_openai_backend
):
    openai_server.hang(10)
    started = time.monotonic()

    with pytest.raises(LLMTimeout) as excinfo:
        await collect(make_openai_backend(timeout=0.5, max_retries=0))

    assert time.monotonic() - started < 3
    assert isinstance(excinfo.value.cause, openai.APITimeoutError)


async def test_first_token_slower_than_timeout_raises_llm_timeout(
    openai_server, make_openai_backend
):
    # Headers arrive at once; the body stalls (a model slow to start).
    openai_server.reply("Too late.", ttft=10)

    with pytest.raises(LLMTimeout):
        await collect(make_openai_backend(timeout=0.5, max_retries=0))


async def test_stream_breaking_midway_raises_llm_unavailable_after_first_deltas(
    openai_server, make_openai_backend
):
    openai_server.break_after(2, "This answer is cut short by the network.")
    received: list[str] = []

    with pytest.raises(LLMUnavailable) as excinfo:
        await read_into(received, make_openai_backend().stream(ask()))

    assert received == ["This ", "answer "]
    assert excinfo.value.cause is not None


async def test_connection_refused_raises_llm_unavailable(make_openai_backend):
    backend = make_openai_backend(base_url=f"http://127.0.0.1:{free_port()}/v1")

    with pytest.raises(LLMUnavailable) as excinfo:
        await collect(backend)

    assert isinstance(excinfo.value.cause, openai.APIConnectionError)


async def test_missing_api_key_raises_llm_unavailable_when_streaming(
    openai_server, monkeypatch
):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    backend = OpenAIBackend(base_url=openai_server.url)

    with pytest.raises(LLMUnavailable):
        await collect(backend)

    assert openai_server.chat_requests == []


async def test_failure_is_logged_with_its_cause_but_not_the_prompt(
    openai_server, make_openai_backend, caplog
):
    openai_server.error(500)
    caplog.set_level(logging.WARNING, logger="sophie_chat.llm.openai")

    with pytest.raises(LLMUnavailable):
        await collect(make_openai_backend(), ask("my secret address is 42 Example St"))

    (record,) = [r for r in caplog.records if r.name == "sophie_chat.llm.openai"]
    assert record.llm_cause == "InternalServerError"
    assert record.llm_status == 500
    assert "InternalServerError" in record.getMessage()
    assert "42 Example St" not in record.getMessage()


# Releasing the HTTP response ------------------------------------------------


async def test_closing_the_stream_early_closes_the_http_response(
    openai_server, make_openai_backend
):
    openai_server.reply("one two three four five six seven", token_delay=0.2)
    stream = make_openai_backend().stream(ask())

    await anext(stream)
    await stream.aclose()

    request = openai_server.last_request
    assert await openai_server.wait_for_disconnect(request, timeout=2)
    assert not request.completed.is_set()


async def test_cancelling_the_consumer_closes_the_http_response(
    openai_server, make_openai_backend
):
    openai_server.reply("one two three four five six seven", token_delay=0.2)
    backend = make_openai_backend()
    first_delta = asyncio.Event()

    async def consume() -> None:
        async for _chunk in backend.stream(ask()):
            first_delta.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first_delta.wait(), timeout=2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert await openai_server.wait_for_disconnect(openai_server.last_request, timeout=2)


def test_backend_works_from_successive_event_loops(openai_server):
    # async_to_sync callers run each call in a new event loop.
    backend = OpenAIBackend(api_key=API_KEY, base_url=openai_server.url, max_retries=0)

    async def once_and_close() -> str:
        try:
            return await backend.complete(ask())
        finally:
            await backend.aclose()

    first = asyncio.run(backend.complete(ask()))
    second = asyncio.run(once_and_close())

    assert first == second == openai_server.default.text


# Checks and description -----------------------------------------------------


def check_ids(backend: OpenAIBackend) -> list[str]:
    return [message.id for message in backend.check("LLM")]


def test_backend_is_built_without_an_api_key(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)

    backend = OpenAIBackend()

    assert backend.model_name == "gpt-4o-mini"


def test_check_reports_e010_without_an_api_key(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)

    (message,) = OpenAIBackend().check("LLM")

    assert message.id == "sophie_chat.E010"
    assert 'SOPHIE_CHAT["LLM"]["OPTIONS"]["api_key"]' in message.hint
    assert "OPENAI_API_KEY" in message.hint


def test_check_accepts_an_api_key_from_the_environment(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")

    assert check_ids(OpenAIBackend()) == []


def test_check_accepts_an_api_key_option(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)

    assert check_ids(OpenAIBackend(api_key="sk-option")) == []


def test_check_reports_e011_for_a_temperature_out_of_range():
    (message,) = OpenAIBackend(api_key="sk", temperature=3).check("LLM")

    assert message.id == "sophie_chat.E011"
    assert "temperature" in message.msg
    assert 'SOPHIE_CHAT["LLM"]["OPTIONS"]["temperature"]' in message.hint


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("model", ""),
        ("base_url", "localhost:11434"),
        ("temperature", "hot"),
        ("max_tokens", 0),
        ("timeout", 0),
        ("timeout", -1),
        ("max_retries", -1),
        ("stream_usage", "yes"),
        ("extra_body", ["seed", 1]),
        ("http_client", "requests"),
    ],
)
def test_check_reports_e011_naming_the_bad_option(option, value):
    messages = OpenAIBackend(api_key="sk", **{option: value}).check("LLM")

    assert [m.id for m in messages] == ["sophie_chat.E011"]
    assert repr(option) in messages[0].msg


def test_check_reports_e011_when_aiohttp_is_asked_for_but_not_installed(monkeypatch):
    monkeypatch.setattr(openai_backend, "aiohttp_installed", lambda: False)

    (message,) = OpenAIBackend(api_key="sk", http_client="aiohttp").check("LLM")

    assert message.id == "sophie_chat.E011"
    assert "pip install sophie-chat[aiohttp]" in message.msg


def test_http_client_defaults_to_aiohttp_when_it_is_installed(monkeypatch):
    assert OpenAIBackend(api_key="sk").describe()["http_client"] == "aiohttp"
    assert OpenAIBackend(api_key="sk", http_client="httpx").describe()["http_client"] == "httpx"

    monkeypatch.setattr(openai_backend, "aiohttp_installed", lambda: False)

    assert OpenAIBackend(api_key="sk").describe()["http_client"] == "httpx"


def test_describe_does_not_leak_the_key_or_url_credentials():
    backend = OpenAIBackend(
        api_key="sk-super-secret",
        base_url="https://user:hunter2@llm.example.com/v1?api-key=sk-also-secret",
    )

    described = repr(backend.describe()) + repr(backend)

    assert "sk-super-secret" not in described
    assert "hunter2" not in described
    assert "sk-also-secret" not in described
    assert backend.describe()["base_url"] == "https://llm.example.com/v1"
    assert backend.describe()["model"] == "gpt-4o-mini"


# Loading through settings ---------------------------------------------------


def test_settings_build_a_configured_backend():
    options = {"model": "llama3.2", "api_key": "ollama", "temperature": 0.1, "timeout": 12}
    llm_setting = {"BACKEND": "sophie_chat.llm.openai.OpenAIBackend", "OPTIONS": options}

    with override_settings(SOPHIE_CHAT={"LLM": llm_setting}):
        backend = backends.llm()

    assert isinstance(backend, OpenAIBackend)
    assert backend.model_name == "llama3.2"
    assert backend.temperature == 0.1
    assert backend.timeout == 12


def test_misspelled_option_raises_invalid_backend_error_naming_it():
    llm_setting = {
        "BACKEND": "sophie_chat.llm.openai.OpenAIBackend",
        "OPTIONS": {"temprature": 0.5},
    }

    with (
        override_settings(SOPHIE_CHAT={"LLM": llm_setting}),
        pytest.raises(backends.InvalidBackendError, match="temprature"),
    ):
        backends.llm()


class _Chunks:
    """A response whose body arrives in the given pieces (``aiter_bytes``)."""

    def __init__(self, *pieces: bytes) -> None:
        self.pieces = pieces
        self.read = 0

    async def aiter_bytes(self):
        for piece in self.pieces:
            self.read += 1
            yield piece


async def test_events_are_read_from_bytes_however_the_body_is_cut():
    from sophie_chat.llm.openai import _server_sent_events

    body = (
        b'data: {"a": "ol\xc3\xa1"}\r\n\r\n'
        b'event: error\ndata: {"message": "busy"}\n\n'
        b'data: {"b":\ndata: 2}\n\n'
        b"data: [DONE]\n\ntrailing bytes"
    )
    for size in (1, 2, 7, len(body)):
        response = _Chunks(*(body[i : i + size] for i in range(0, len(body), size)))
        events = [event async for event in _server_sent_events(response)]
        assert events == [{"a": "olá"}, {"message": "busy", "error": "busy"}, {"b": 2}]
        # Read to the end after [DONE]: the connection goes back to the pool.
        assert response.read == len(response.pieces)


async def test_the_last_event_needs_no_blank_line_before_the_end_of_the_body():
    from sophie_chat.llm.openai import _server_sent_events

    events = [e async for e in _server_sent_events(_Chunks(b'data: {"x": 1}'))]
    assert events == [{"x": 1}]


async def test_an_event_with_a_lone_surrogate_is_read_as_json_reads_it():
    from sophie_chat.llm.openai import _server_sent_events

    events = [e async for e in _server_sent_events(_Chunks(b'data: {"t": "a\\ud800b"}\n\n'))]
    assert events == [{"t": "a\ud800b"}]
