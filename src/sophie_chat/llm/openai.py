"""The OpenAI backend: OpenAI's API, or any OpenAI-compatible server.

Uses the official ``openai`` SDK (``AsyncOpenAI``, chat completions,
streamed). With ``base_url`` it talks to any server that speaks the same
API: Ollama, vLLM, llama.cpp's ``llama-server``, LiteLLM, Azure-compatible
gateways. See ``docs/backends/openai.md``.
"""

from __future__ import annotations

import asyncio
import email.utils
import functools
import importlib.util
import json
import logging
import math
import os
import time
import weakref
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import openai
from django.core import checks

from sophie_chat.llm.base import (
    BaseLLMBackend,
    LLMChunk,
    LLMError,
    LLMRateLimited,
    LLMRequest,
    LLMTimeout,
    LLMToolCall,
    LLMUnavailable,
    Usage,
)
from sophie_chat.security import redact

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.openai.com/v1"


def _transport_errors() -> tuple[tuple[type[BaseException], ...], tuple[type[BaseException], ...]]:
    """The HTTP library's (errors, timeouts) that can escape the SDK mid-stream.

    openai 1.x streams over ``httpx`` and lets its errors through while a
    response body is read; later versions use ``httpx2`` and wrap them. Both
    are caught so a broken stream is always reported as an LLMError.
    """
    errors: list[type[BaseException]] = []
    timeouts: list[type[BaseException]] = []
    for name in ("httpx", "httpx2"):
        try:
            module = __import__(name)
        except ImportError:
            continue
        errors.append(module.HTTPError)
        errors.append(module.StreamError)
        timeouts.append(module.TimeoutException)
    return tuple(errors), tuple(timeouts)


_TRANSPORT_ERRORS, _TRANSPORT_TIMEOUTS = _transport_errors()


def _sdk_response_class() -> type:
    """The HTTP library's ``Response`` class that the SDK's client returns raw."""
    for name in ("httpx2", "httpx"):
        try:
            module = __import__(name)
        except ImportError:
            continue
        if issubclass(openai.DefaultAsyncHttpxClient, module.AsyncClient):
            return module.Response
    raise ImportError("the openai SDK uses neither httpx nor httpx2")


_RESPONSE_CLASS = _sdk_response_class()

# What the SDK may raise while a request is made or its stream is read. A
# malformed event from a compatible server surfaces as a JSON error.
_FAILURES: tuple[type[BaseException], ...] = (
    openai.OpenAIError,
    json.JSONDecodeError,
    *_TRANSPORT_ERRORS,
)

#: The largest event read from a stream; a real chunk is a few hundred bytes.
MAX_EVENT_CHARS = 1_000_000
#: More tokens than any model's context: a usage report past it is not believed.
MAX_REPORTED_TOKENS = 100_000_000


class _ToolCallPieces:
    """The tool calls of a stream, assembled from their deltas by ``index``.

    The first delta of a call names its ``id`` and function; the following
    ones add pieces of the arguments' JSON text. Calls made in parallel may
    interleave.
    """

    def __init__(self) -> None:
        self.calls: dict[int, dict[str, Any]] = {}

    def __bool__(self) -> bool:
        return bool(self.calls)

    def add(self, deltas: Any) -> None:
        for piece in deltas if isinstance(deltas, list) else ():
            if not isinstance(piece, dict):
                continue
            index = piece.get("index")
            if not isinstance(index, int):
                index = len(self.calls)
            call = self.calls.setdefault(index, {"id": "", "name": "", "arguments": []})
            if piece.get("id"):
                call["id"] = str(piece["id"])
            function = piece.get("function") or {}
            if isinstance(function, dict):
                if function.get("name"):
                    call["name"] += str(function["name"])
                if function.get("arguments"):
                    call["arguments"].append(str(function["arguments"]))

    def assembled(self) -> tuple[LLMToolCall, ...]:
        return tuple(
            LLMToolCall(
                id=call["id"] or f"call_{index}",
                name=call["name"],
                arguments="".join(call["arguments"]) or "{}",
            )
            for index, call in sorted(self.calls.items())
        )


class OpenAIBackend(BaseLLMBackend):
    """Streams answers from OpenAI's chat completions API.

    Options (``SOPHIE_CHAT["LLM"]["OPTIONS"]``, all keyword-only):
        model: the model name, ``"gpt-4o-mini"`` by default.
        api_key: the API key; None reads ``OPENAI_API_KEY``.
        base_url: the API root, e.g. ``"http://127.0.0.1:11434/v1"`` for
            Ollama; None reads ``OPENAI_BASE_URL``, else OpenAI's.
        temperature: 0 to 2 (0.3); None leaves it to the server.
        max_tokens: the answer's length limit in tokens (500); None sends
            none. A request's own ``max_tokens`` wins.
        timeout: seconds to wait for the connection and for each read (30).
        max_retries: how often the SDK retries a failed request (2).
        organization: the OpenAI organization id, if any.
        stream_usage: ask for token usage at the end of the stream (True);
            turn off for servers that reject ``stream_options``.
        extra_body: extra JSON fields sent with every request (e.g.
            ``{"max_completion_tokens": 800}`` or a server's own options).
        http_client: the SDK's HTTP transport, ``"httpx"`` (the SDK's
            default) or ``"aiohttp"`` (``pip install sophie-chat[aiohttp]``:
            about half the CPU time per answer). None, the default, uses
            aiohttp when it is installed.

    The SDK client is built on first use (one per event loop), so a missing
    key never breaks settings loading: :meth:`check` reports it
    (``sophie_chat.E010``), and :meth:`stream` raises :class:`LLMUnavailable`.

    Tools: ``request.tools`` are sent as function tools; the model's calls,
    streamed in pieces (several at once when it calls in parallel), are
    yielded assembled.
    """

    supports_tools = True

    def __init__(
        self,
        *,
        model: str = "gpt-4o-mini",
        api_key: str | None = None,
        base_url: str | None = None,
        temperature: float | None = 0.3,
        max_tokens: int | None = 500,
        timeout: float = 30.0,
        max_retries: int = 2,
        organization: str | None = None,
        stream_usage: bool = True,
        extra_body: Mapping[str, Any] | None = None,
        http_client: str | None = None,
    ) -> None:
        # Values are checked by check() (sophie_chat.E011), not here: a bad
        # value should be reported with the other system checks.
        self.model_name = model
        self._api_key = api_key
        self.base_url = base_url
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.timeout = timeout
        self.max_retries = max_retries
        self.organization = organization
        self.stream_usage = stream_usage
        self.extra_body = extra_body
        self.http_client = http_client
        # An httpx client is bound to the event loop it first ran on;
        # async_to_sync callers and test suites run several loops.
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, openai.AsyncOpenAI] = (
            weakref.WeakKeyDictionary()
        )

    # The client -----------------------------------------------------------

    def _client(self) -> openai.AsyncOpenAI:
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            try:
                client = openai.AsyncOpenAI(
                    api_key=self._api_key or None,
                    base_url=self.base_url or None,
                    organization=self.organization,
                    timeout=self.timeout,
                    max_retries=self.max_retries,
                    http_client=(
                        openai.DefaultAioHttpClient() if self.transport() == "aiohttp" else None
                    ),
                )
            except (openai.OpenAIError, TypeError, ValueError, RuntimeError) as exc:
                raise self._failed(
                    LLMUnavailable("The OpenAI client could not be created."), cause=exc
                ) from exc
            self._clients[loop] = client
        return client

    def transport(self) -> str:
        """The HTTP transport in use: ``"aiohttp"`` or ``"httpx"``."""
        if self.http_client is None:
            return "aiohttp" if aiohttp_installed() else "httpx"
        return self.http_client

    async def aclose(self) -> None:
        """Close the SDK client of the running event loop (others are dropped)."""
        loop = asyncio.get_running_loop()
        client = self._clients.pop(loop, None)
        self._clients.clear()
        if client is not None:
            await client.close()

    # Streaming ------------------------------------------------------------

    def _params(self, request: LLMRequest) -> dict[str, Any]:
        params: dict[str, Any] = {
            "model": self.model_name,
            "messages": [message.as_dict() for message in request.messages],
            "stream": True,
        }
        if self.temperature is not None:
            params["temperature"] = self.temperature
        max_tokens = request.max_tokens if request.max_tokens is not None else self.max_tokens
        if max_tokens is not None:
            params["max_tokens"] = max_tokens
        if self.stream_usage:
            params["stream_options"] = {"include_usage": True}
        if request.tools:
            params["tools"] = [tool.as_openai() for tool in request.tools]
        if self.extra_body:
            params.update(self.extra_body)
        return params

    async def stream(self, request: LLMRequest) -> AsyncIterator[LLMChunk]:
        """Yield the answer's text deltas, then the tool calls (one chunk with all of
        them, assembled from their streamed pieces), then one chunk with ``usage``.

        The usage chunk comes only when the server reports usage (see
        ``stream_usage``). Raises :class:`LLMTimeout`, :class:`LLMRateLimited`
        or :class:`LLMUnavailable`, raised from the SDK's exception;
        an error may come after some deltas were yielded (a broken stream).
        Closing the generator early closes the HTTP response.
        """
        client = self._client()
        started = time.monotonic()
        try:
            # The SDK sends the request (auth, retries, timeouts, its errors for
            # HTTP statuses) and hands back the raw response: its typed stream
            # builds a pydantic object per chunk, most of a turn's CPU time.
            response = await client.post(
                "/chat/completions",
                body=self._params(request),
                cast_to=_RESPONSE_CLASS,
                stream=True,
            )
        except _FAILURES as exc:
            raise self._failed(self._translate(exc), started, cause=exc) from exc

        model = self.model_name
        finish_reason: str | None = None
        usage: Usage | None = None
        calls = _ToolCallPieces()
        try:
            try:
                async for event in _server_sent_events(response):
                    if event.get("error"):
                        raise LLMUnavailable("The model's stream reported an error.")
                    # .get: compatible servers leave out fields OpenAI always sends.
                    if isinstance(event.get("model"), str) and event["model"]:
                        model = event["model"][:100]
                    reported = event.get("usage")
                    if isinstance(reported, dict):
                        # None when not believable: the engine then counts the tokens itself.
                        usage = _usage(reported)
                    for choice in event.get("choices") or ():
                        if not isinstance(choice, dict) or (choice.get("index") or 0) != 0:
                            continue
                        if isinstance(choice.get("finish_reason"), str):
                            finish_reason = choice["finish_reason"][:40]
                        changes = choice.get("delta") or {}
                        if not isinstance(changes, dict):
                            changes = {}
                        delta = changes.get("content")
                        if delta is not None and not isinstance(delta, str):
                            raise LLMUnavailable("The model's stream sent content not text.")
                        if delta:
                            yield LLMChunk(delta=delta, model=model)
                        if changes.get("tool_calls"):
                            calls.add(changes["tool_calls"])
            except LLMUnavailable as error:
                raise self._failed(error, started) from None
            except (*_FAILURES, AttributeError, TypeError) as exc:
                raise self._failed(self._translate(exc), started, cause=exc) from exc
        finally:
            # Also runs when the consumer stops early or is cancelled: the
            # HTTP response must not stay open until garbage collection.
            await response.aclose()

        if finish_reason is None:
            # Every chat completions stream ends its choice with a
            # finish_reason; without one the server stopped mid-answer.
            raise self._failed(
                LLMUnavailable("The model's stream ended before the answer was finished."),
                started,
            )
        if calls:
            yield LLMChunk(model=model, tool_calls=calls.assembled(), finish_reason=finish_reason)
        if usage is not None:
            yield LLMChunk(usage=usage, model=model, finish_reason=finish_reason)

    def _translate(self, exc: BaseException) -> LLMError:
        """The contract's error for an SDK (or transport) exception, to raise from it."""
        if isinstance(exc, (openai.APITimeoutError, *_TRANSPORT_TIMEOUTS)) and not _refused(exc):
            return LLMTimeout("The model did not answer in time.")
        if isinstance(exc, openai.RateLimitError):
            return LLMRateLimited(
                "The model provider is rate limiting requests.",
                retry_after=retry_after_seconds(exc.response.headers),
            )
        if isinstance(exc, openai.APIStatusError):
            return LLMUnavailable(f"The model provider answered with HTTP {exc.status_code}.")
        if isinstance(exc, (openai.APIConnectionError, ConnectionError, *_TRANSPORT_TIMEOUTS)):
            return LLMUnavailable("The model provider could not be reached.")
        return LLMUnavailable("The model's response failed.")

    def _failed(
        self, error: LLMError, started: float | None = None, *, cause: BaseException | None = None
    ) -> LLMError:
        """Log ``error`` and the ``cause`` it is raised from (never the prompt); return it."""
        status = getattr(cause, "status_code", None)
        logger.warning(
            "LLM call failed: %s (%s: %s)",
            error,
            type(cause).__name__ if cause is not None else "-",
            self._describe(cause),
            extra={
                "llm_backend": "openai",
                "llm_model": self.model_name,
                "llm_error": type(error).__name__,
                "llm_cause": type(cause).__name__ if cause is not None else None,
                "llm_status": status,
                "llm_elapsed_ms": (
                    round((time.monotonic() - started) * 1000) if started is not None else None
                ),
            },
        )
        return error

    def _describe(self, cause: BaseException | None) -> str:
        """The cause for a log line. A provider's error body may echo the request (the
        key, the system prompt, the visitor's words): of it only its type and code."""
        if cause is None:
            return "-"
        if isinstance(cause, openai.APIStatusError):
            body = cause.body if isinstance(cause.body, dict) else {}
            body = body.get("error", body) if isinstance(body.get("error", body), dict) else {}
            facts = [f"HTTP {cause.status_code}"]
            facts += [str(body[k])[:60] for k in ("type", "code") if isinstance(body.get(k), str)]
            return redact(" ".join(facts), *self._keys())
        return redact(str(cause), *self._keys())

    def _keys(self) -> tuple[str, ...]:
        keys = (self._api_key, os.environ.get("OPENAI_API_KEY"))
        return tuple(key for key in keys if isinstance(key, str) and key)

    # Configuration --------------------------------------------------------

    def check(self, setting: str = "LLM") -> Sequence[checks.CheckMessage]:
        """``sophie_chat.E010`` without an API key, ``E011`` per bad option value."""
        options = f'SOPHIE_CHAT["{setting}"]["OPTIONS"]'
        errors: list[checks.CheckMessage] = []
        if not self._api_key and not os.environ.get("OPENAI_API_KEY"):
            errors.append(
                checks.Error(
                    "The OpenAI LLM backend has no API key.",
                    hint=(
                        f'Set {options}["api_key"] or the OPENAI_API_KEY environment '
                        "variable. Servers that ignore the key (Ollama, vLLM, llama.cpp) "
                        "accept any non-empty value."
                    ),
                    id="sophie_chat.E010",
                )
            )
        for name, problem in self._invalid_options():
            errors.append(
                checks.Error(
                    f"The OpenAI LLM backend's option {name!r} is invalid: {problem}.",
                    hint=f'Fix {options}["{name}"].',
                    id="sophie_chat.E011",
                )
            )
        return errors

    def _invalid_options(self) -> list[tuple[str, str]]:
        problems: list[tuple[str, str]] = []

        def number(value: Any) -> bool:
            return (
                isinstance(value, int | float)
                and not isinstance(value, bool)
                and math.isfinite(value)
            )

        def integer(value: Any) -> bool:
            return isinstance(value, int) and not isinstance(value, bool)

        if not isinstance(self.model_name, str) or not self.model_name.strip():
            problems.append(("model", "it must be a non-empty string"))
        if self._api_key is not None and not isinstance(self._api_key, str):
            problems.append(("api_key", "it must be a string or None"))
        if self.base_url is not None and (
            not isinstance(self.base_url, str)
            or urlsplit(self.base_url).scheme not in {"http", "https"}
            or not urlsplit(self.base_url).netloc
        ):
            problems.append(("base_url", "it must be an http:// or https:// URL or None"))
        if self.temperature is not None and not (
            number(self.temperature) and 0 <= self.temperature <= 2
        ):
            problems.append(("temperature", "it must be a number from 0 to 2, or None"))
        if self.max_tokens is not None and not (integer(self.max_tokens) and self.max_tokens > 0):
            problems.append(("max_tokens", "it must be a positive integer or None"))
        if not (number(self.timeout) and self.timeout > 0):
            problems.append(("timeout", "it must be a positive number of seconds"))
        if not (integer(self.max_retries) and self.max_retries >= 0):
            problems.append(("max_retries", "it must be an integer of 0 or more"))
        if self.organization is not None and not isinstance(self.organization, str):
            problems.append(("organization", "it must be a string or None"))
        if not isinstance(self.stream_usage, bool):
            problems.append(("stream_usage", "it must be True or False"))
        if self.extra_body is not None and not isinstance(self.extra_body, Mapping):
            problems.append(("extra_body", "it must be a dict or None"))
        if self.http_client not in (None, "httpx", "aiohttp"):
            problems.append(("http_client", 'it must be "httpx", "aiohttp" or None'))
        elif self.http_client == "aiohttp" and not aiohttp_installed():
            problems.append(
                ("http_client", "aiohttp is not installed (pip install sophie-chat[aiohttp])")
            )
        return problems

    def describe(self) -> dict[str, Any]:
        """Model, endpoint (without credentials) and limits; never the API key."""
        base_url = self.base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL
        return {
            **super().describe(),
            "base_url": _public_url(base_url),
            "timeout": self.timeout,
            "max_retries": self.max_retries,
            "stream_usage": self.stream_usage,
            "http_client": self.transport(),
        }

    def __repr__(self) -> str:
        return f"<{type(self).__name__} model={self.model_name!r}>"


def _refused(exc: BaseException) -> bool:
    """Whether the connection was refused or reset, whatever the transport called it.

    The SDK's aiohttp adapter reports a refused connection as a connect
    timeout; a refused connection fails at once and is not a timeout.
    """
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, ConnectionError):
            return True
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return False


@functools.cache
def aiohttp_installed() -> bool:
    """Whether the SDK's aiohttp transport can be used (``openai[aiohttp]``, openai 1.89+)."""
    if not hasattr(openai, "DefaultAioHttpClient") or not importlib.util.find_spec("aiohttp"):
        return False
    # openai 3 carries its adapter; earlier versions need the httpx-aiohttp package.
    return any(
        importlib.util.find_spec(adapter)
        for adapter in ("openai._vendor.httpx_aiohttp", "httpx_aiohttp")
    )


try:
    # Optional (the "aiohttp" extra brings it): several times json's speed on the
    # model's events, one per token.
    from orjson import loads as _fast_loads
except ImportError:  # pragma: no cover - exercised where orjson is absent
    _fast_loads = json.loads


def _loads(payload: bytes) -> Any:
    try:
        return _fast_loads(payload)
    except ValueError:
        # orjson refuses what json reads (a lone surrogate's escape, say): such
        # an event gets json's reading, and its text is cleaned like any other.
        return json.loads(payload)


async def _server_sent_events(response: Any) -> AsyncIterator[dict[str, Any]]:
    """The JSON objects of a chat completions event stream, until ``[DONE]``.

    Read as bytes: no text decoding of the whole stream, and JSON parsed from
    bytes (UTF-8, as the event stream format requires).
    """
    data: list[bytes] = []
    size = 0
    kind = b""
    done = False
    rest = b""
    chunks = response.aiter_bytes()
    while True:
        chunk = await anext(chunks, None)
        if done:
            # Read to the end of the body, so the connection goes back to the pool.
            if chunk is None:
                return
            continue
        if chunk is None:
            # The end of the body ends the last line, and the last event.
            lines = [rest, b""] if rest else [b""]
        else:
            *lines, rest = (rest + chunk).split(b"\n") if rest else chunk.split(b"\n")
            if len(rest) > MAX_EVENT_CHARS:
                raise LLMUnavailable("The model's stream sent an event too large to read.")
        for raw in lines:
            line = raw[:-1] if raw.endswith(b"\r") else raw
            if line.startswith(b"data:"):
                part = line[6:] if line.startswith(b"data: ") else line[5:]
                data.append(part)
                size += len(part)
                if size > MAX_EVENT_CHARS:
                    raise LLMUnavailable("The model's stream sent an event too large to read.")
            elif line.startswith(b"event:"):
                kind = line[6:].strip()
            elif not line and data:
                # A blank line ends an event.
                payload = data[0] if len(data) == 1 else b"\n".join(data)
                data, size = [], 0
                if payload.startswith(b"[DONE]"):
                    done = True
                    break
                try:
                    event = _loads(payload)
                except (ValueError, RecursionError) as exc:
                    raise LLMUnavailable(
                        "The model's stream sent an event that is not JSON."
                    ) from exc
                if kind == b"error" and isinstance(event, dict):
                    event.setdefault("error", event.get("message") or "error")
                kind = b""
                if isinstance(event, dict):
                    yield event
        if chunk is None:
            return


def _usage(reported: dict[str, Any]) -> Usage | None:
    """A usage report of whole numbers of tokens, or None when it is not one."""
    counts = [reported.get("prompt_tokens") or 0, reported.get("completion_tokens") or 0]
    if not all(
        isinstance(n, int) and not isinstance(n, bool) and 0 <= n <= MAX_REPORTED_TOKENS
        for n in counts
    ):
        return None
    return Usage(prompt_tokens=counts[0], completion_tokens=counts[1])


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait from ``Retry-After-Ms`` or ``Retry-After`` (seconds or
    an HTTP date); None when absent or unreadable."""
    value = headers.get("retry-after-ms")
    if value:
        try:
            seconds = float(value) / 1000
        except ValueError:
            pass
        else:
            if math.isfinite(seconds) and seconds >= 0:
                return seconds
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    if not math.isfinite(seconds):
        return None
    return max(seconds, 0.0)


def _public_url(url: str) -> str:
    """``url`` without user info, query or fragment (where credentials hide)."""
    try:
        parts = urlsplit(str(url))
    except ValueError:
        return "<invalid>"
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))
