"""The fake OpenAI-compatible server: one for the tests, the benchmark and the screenshot scripts.

It speaks enough of the OpenAI HTTP API for the official ``openai`` SDK:
``POST /v1/chat/completions`` (server-sent events with ``stream: true``, one
JSON body otherwise) and ``GET /v1/models``, over keep-alive HTTP/1.1 as the
real API does. It is a bare :class:`asyncio.Protocol` with each answer's
events encoded before the first is sent, so a test controls exactly what
goes over the wire (delays, status codes, a hang, a stream cut short) and
the benchmark's model costs a few microseconds a token, never the
bottleneck of a run.

In a test (the ``openai_server`` fixture in ``tests/llm/conftest.py`` yields
one, running in a thread)::

    with FakeOpenAIServer(default_reply="Hi!") as server:
        server.reply("Hello there", token_delay=0.01)
        server.error(500)
        server.rate_limit(retry_after=7)
        server.hang(5)
        server.break_after(2, "This answer is cut short")
        server.enqueue(HOSTILE["object_delta"])  # a hostile stream (see HOSTILE)
        server.call_tools(("my_bookings", {}), ("add", {"a": 1, "b": 2}))
        ...  # point the SDK at server.url
        assert server.requests[0].body["model"] == "gpt-4o-mini"

Behaviours are consumed in order, one per chat-completions request; when
the queue is empty the default reply is sent. Every request is recorded
(:class:`RecordedRequest`), including whether the client went away before
the response was complete.

As a process (end-to-end and browser tests, the benchmark)::

    python -m tests.support.openai_server --port 0 --reply "Hello" --ttft-ms 50 --token-ms 5

prints ``listening on http://127.0.0.1:N/v1`` (flushed) once it accepts
connections; :func:`start_fake_openai` starts one and returns a
:class:`FakeOpenAIProcess` that scripts it over HTTP: ``POST /_fake/queue``
with a behaviour as JSON (``{"kind": "reply", "text": "..."}``, ``{"kind":
"error", "status": 500}``, ``{"kind": "rate_limit", "retry_after": 3}``,
``{"kind": "hang", "seconds": 5}``, ``{"kind": "break", "after": 2, "text":
"..."}``, a reply calling tools: ``{"kind": "reply", "text": "", "tool_calls":
[{"name": "my_bookings", "arguments": {}}]}``, a hostile stream of
:data:`HOSTILE`: ``{"kind": "hostile", "name": "nested"}``, or raw events:
``{"kind": "raw", "events": ["..."]}``), ``POST /_fake/default`` with
the fields of a reply to change the default one (the benchmark's model
between scenarios), ``GET
/_fake/requests`` lists the recorded requests and ``POST /_fake/reset``
forgets queue and records.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import functools
import json
import re
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.network import http
from tests.support.processes import ServerProcess, project_env, raise_file_limit

DEFAULT_REPLY = "Hello! This is the fake OpenAI server."
MODELS = ("gpt-4o-mini", "fake-model")
#: The bearer token the tests' servers require and their backends send.
API_KEY = "sk-test-0123456789abcdef"
#: The default reply of the process :func:`start_fake_openai` starts for the tests.
MODEL_REPLY = "Cleaning a two-bedroom flat takes about three hours."


# Behaviours -----------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    """A normal answer: ``text`` streamed as word deltas (or one JSON body).

    ``ttft`` is the delay in seconds between the response headers and the
    first token, ``token_delay`` the delay before each following token.
    ``model`` defaults to the model the request named.
    """

    text: str = DEFAULT_REPLY
    ttft: float = 0.0
    token_delay: float = 0.0
    model: str | None = None
    finish_reason: str = "stop"
    #: Tool calls after the text: ``{"name": ..., "arguments": JSON text or a dict,
    #: "id"?: ...}``. Streamed as OpenAI does (the id and name first, then the
    #: arguments in pieces), interleaved when there are several; the finish
    #: reason is then ``tool_calls``.
    tool_calls: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class Error:
    """An HTTP error with an OpenAI-shaped JSON error body."""

    status: int = 500
    message: str = "The server had an error while processing your request."
    type: str = "server_error"
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Hang:
    """Accept the request and send nothing for ``seconds``, then close."""

    seconds: float = 60.0


@dataclass(frozen=True)
class Break:
    """Stream ``after`` content deltas of ``text``, then close the connection
    without finishing the chunked body and without ``[DONE]``."""

    after: int = 1
    text: str = "This answer will be cut short by a broken connection."


@dataclass(frozen=True)
class Raw:
    """A hostile stream: each of ``events`` sent as one server-sent event's data, as is.

    The last event is sent ``repeat`` more times (an endless answer, until
    the client goes away), then ``[DONE]`` unless ``done`` is False. See
    :data:`HOSTILE` for the streams the adversarial tests send.
    """

    events: tuple[str, ...] = ()
    repeat: int = 0
    done: bool = True
    token_delay: float = 0.0


Behaviour = Reply | Error | Hang | Break | Raw


def _content(content: Any, **extra: Any) -> str:
    """One chat completion chunk whose delta's ``content`` is ``content`` (any JSON value)."""
    choice = {"index": 0, "delta": {"content": content}, "finish_reason": None}
    return json.dumps({"id": "x", "model": "gpt-4o-mini", "choices": [choice], **extra})


_FINISH = json.dumps(
    {
        "id": "x",
        "model": "gpt-4o-mini",
        "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
    }
)

#: Hostile model streams by name (``Raw`` behaviours): what a compromised or
#: broken OpenAI-compatible server may send. Every one must end in the usual
#: fallback or a bounded, clean answer, never an error or an unstorable row.
HOSTILE: dict[str, Raw] = {
    "number_delta": Raw((_content("Fine "), _content(42), _FINISH)),
    "object_delta": Raw((_content("Fine "), _content({"html": "<b>x</b>"}), _FINISH)),
    "list_choices_garbage": Raw(('{"choices": [1, "x", null]}', _content("ok"), _FINISH)),
    "absurd_usage": Raw(
        (
            _content("Fine."),
            _FINISH,
            json.dumps(
                {"choices": [], "usage": {"prompt_tokens": 10**30, "completion_tokens": -5}}
            ),
        )
    ),
    "string_usage": Raw(
        (_content("Fine."), _FINISH, '{"choices":[],"usage":{"prompt_tokens":"lots"}}')
    ),
    "nested": Raw((_content("Fine "), '{"a":' * 100_000 + "1" + "}" * 100_000, _FINISH)),
    "not_json": Raw((_content("Fine "), "{not json", _FINISH)),
    "huge_event": Raw((_content("x" * 3_000_000), _FINISH)),
    # json.dumps escapes both: the events are ASCII, the decoded text is hostile.
    "surrogate": Raw((_content("Fine \ud800 answer"), _FINISH)),
    "nul": Raw((_content("Fine \u0000 answer"), _FINISH)),
    "mid_stream_error": Raw((_content("Fine "), '{"error": {"message": "boom"}}'), done=False),
    "no_finish": Raw((_content("Fine "), _content("then nothing")), done=True),
    "endless": Raw((_content("all work and no play "),), repeat=1_000_000, done=False),
}


def behaviour_from_dict(data: dict[str, Any]) -> Behaviour:
    """Build a behaviour from its JSON form (the ``/_fake/queue`` endpoint)."""
    data = dict(data)
    kind = data.pop("kind", "reply")
    if kind == "reply":
        data["tool_calls"] = tuple(data.get("tool_calls") or ())
        return Reply(**data)
    if kind == "error":
        headers = tuple((str(k), str(v)) for k, v in (data.pop("headers", None) or {}).items())
        return Error(headers=headers, **data)
    if kind == "rate_limit":
        return _rate_limit(**data)
    if kind == "hang":
        return Hang(**data)
    if kind == "break":
        return Break(**data)
    if kind == "raw":
        return Raw(**{**data, "events": tuple(data.get("events", ()))})
    if kind == "hostile":
        return HOSTILE[data["name"]]
    raise ValueError(f"unknown behaviour kind {kind!r}")


def _rate_limit(retry_after: float | None = 1, message: str = "Rate limit reached.") -> Error:
    headers = () if retry_after is None else (("retry-after", _number(retry_after)),)
    return Error(status=429, message=message, type="rate_limit_exceeded", headers=headers)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def split_into_deltas(text: str) -> list[str]:
    """Split ``text`` into word deltas that join back to exactly ``text``."""
    return re.findall(r"\s+\S*\s*|\S+\s*", text) if text else []


# Records --------------------------------------------------------------------


@dataclass
class RecordedRequest:
    """One request as the server received it."""

    method: str
    path: str
    #: Header names in lower case.
    headers: dict[str, str]
    #: The parsed JSON body (None without a body or when it is not JSON).
    body: Any
    #: Set when the client closed the connection before the response was complete.
    disconnected: threading.Event = field(default_factory=threading.Event, repr=False)
    #: Set when the response was sent completely.
    completed: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def authorization(self) -> str | None:
        return self.headers.get("authorization")

    def as_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "headers": self.headers,
            "body": self.body,
            "disconnected": self.disconnected.is_set(),
            "completed": self.completed.is_set(),
        }


# The server -----------------------------------------------------------------


class FakeOpenAIServer:
    """An OpenAI-compatible server on 127.0.0.1, scriptable per test.

    Use it as a context manager (it then runs in a background thread with
    its own event loop), or await :meth:`serve_forever` (the command line).
    ``api_key``, when given, is required as the bearer token (other requests
    get a 401, like the real API). ``record=False`` keeps no requests (a
    benchmark's soak sends thousands).
    """

    def __init__(
        self,
        *,
        port: int = 0,
        default_reply: str = DEFAULT_REPLY,
        ttft: float = 0.0,
        token_delay: float = 0.0,
        api_key: str | None = None,
        record: bool = True,
    ) -> None:
        self.host = "127.0.0.1"
        self.port = port
        self.default = Reply(text=default_reply, ttft=ttft, token_delay=token_delay)
        self.api_key = api_key
        self.record = record
        self.queue: deque[Behaviour] = deque()
        self.requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[_Connection] = set()
        self._ids = 0

    # Scripting ----------------------------------------------------------

    @property
    def url(self) -> str:
        """The base URL for the SDK, ending in ``/v1``."""
        return f"http://{self.host}:{self.port}/v1"

    def enqueue(self, *behaviours: Behaviour) -> None:
        with self._lock:
            self.queue.extend(behaviours)

    def reply(
        self,
        text: str,
        *,
        ttft: float = 0.0,
        token_delay: float = 0.0,
        model: str | None = None,
        finish_reason: str = "stop",
    ) -> None:
        """Queue a normal answer."""
        self.enqueue(Reply(text, ttft, token_delay, model, finish_reason))

    def call_tools(self, *calls: tuple[str, Any], text: str = "") -> None:
        """Queue an answer that calls tools: ``(name, arguments)`` pairs, the arguments
        a dict or raw JSON text (to send malformed ones)."""
        self.enqueue(
            Reply(text, tool_calls=tuple({"name": n, "arguments": a} for n, a in calls))
        )

    def error(
        self,
        status: int = 500,
        message: str | None = None,
        *,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Queue an HTTP error response."""
        self.enqueue(
            Error(
                status=status,
                message=message or Error.message,
                type="server_error" if status >= 500 else "invalid_request_error",
                headers=tuple((headers or {}).items()),
            )
        )

    def rate_limit(self, retry_after: float | None = 1) -> None:
        """Queue a 429, with a ``Retry-After`` header unless ``retry_after`` is None."""
        self.enqueue(_rate_limit(retry_after))

    def hang(self, seconds: float = 60.0) -> None:
        """Queue a request that gets no response for ``seconds``."""
        self.enqueue(Hang(seconds))

    def break_after(self, after: int = 1, text: str = Break.text) -> None:
        """Queue a stream that is cut after ``after`` content deltas."""
        self.enqueue(Break(after, text))

    def set_default(self, **fields: Any) -> Reply:
        """Change the reply sent when nothing is queued (fields of :class:`Reply`)."""
        with self._lock:
            self.default = dataclasses.replace(self.default, **fields)
            return self.default

    def reset(self) -> None:
        """Forget queued behaviours and recorded requests."""
        with self._lock:
            self.queue.clear()
            self.requests.clear()

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        """The recorded ``POST /v1/chat/completions`` requests."""
        return [r for r in list(self.requests) if r.path.endswith("/chat/completions")]

    @property
    def last_request(self) -> RecordedRequest:
        return self.chat_requests[-1]

    async def wait_for_disconnect(self, request: RecordedRequest, timeout: float = 5.0) -> bool:
        """Wait (without blocking the caller's event loop) until ``request``'s
        client went away; False on timeout."""
        return await asyncio.to_thread(request.disconnected.wait, timeout)

    def _next_behaviour(self) -> Behaviour:
        with self._lock:
            return self.queue.popleft() if self.queue else self.default

    def _record(self, request: RecordedRequest) -> None:
        if self.record:
            with self._lock:
                self.requests.append(request)

    def _next_id(self) -> str:
        self._ids += 1
        return f"chatcmpl-fake{self._ids}"

    # Running in a thread ------------------------------------------------

    def start(self) -> FakeOpenAIServer:
        """Start serving in a background thread; returns once connections are accepted."""
        if self._thread is not None:
            raise RuntimeError("already started")
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name="fake-openai", daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.listen(), loop).result(timeout=10)
        return self

    def stop(self) -> None:
        """Stop serving, drop open connections and join the thread."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self.aclose(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
        self._loop = self._thread = None

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # Running in the foreground ------------------------------------------

    async def listen(self) -> None:
        """Accept connections on the running event loop."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _Connection(self), self.host, self.port, backlog=4096
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def aclose(self) -> None:
        """Stop accepting, drop open connections."""
        if self._server is not None:
            self._server.close()
        for connection in list(self._connections):
            connection.abort()
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def serve_forever(self, ready: Callable[[str], Any] | None = None) -> None:
        """Serve until cancelled; ``ready(url)`` is called once listening."""
        await self.listen()
        if ready is not None:
            ready(self.url)
        try:
            await asyncio.Event().wait()
        finally:
            await self.aclose()


# One connection ---------------------------------------------------------------


class _Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection; its requests are answered one at a time."""

    def __init__(self, server: FakeOpenAIServer) -> None:
        self.server = server
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        #: The request being answered (None between requests).
        self.current: RecordedRequest | None = None
        self.close_when_done = False
        self.timer: asyncio.TimerHandle | None = None
        self.pending: list[bytes] = []
        self.delay = 0.0

    # asyncio.Protocol ---------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.server._connections.add(self)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        self._next_request()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timer()
        if self.current is not None and not self.current.completed.is_set():
            self.current.disconnected.set()
        self.current = None
        self.transport = None
        self.server._connections.discard(self)

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    # Requests -----------------------------------------------------------

    def _next_request(self) -> None:
        while self.current is None and self.transport is not None:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            request_line, *header_lines = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
            headers: dict[str, str] = {}
            for line in header_lines:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length") or 0)
            if len(self.buffer) < end + 4 + length:
                return
            raw = bytes(self.buffer[end + 4 : end + 4 + length])
            del self.buffer[: end + 4 + length]
            method, target, _version = request_line.split(" ", 2)
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = None
            self.close_when_done = headers.get("connection", "").lower() == "close"
            self.current = RecordedRequest(method, target.split("?", 1)[0], headers, body)
            self._handle(self.current)

    def _handle(self, request: RecordedRequest) -> None:
        server = self.server
        if request.path.startswith("/_fake/"):
            self._control(request)
            return
        server._record(request)
        if server.api_key is not None and request.authorization != f"Bearer {server.api_key}":
            self._send_json(
                401, _error_body("Incorrect API key.", "invalid_request_error", "invalid_api_key")
            )
            return
        if request.method == "GET" and request.path == "/v1/models":
            data = [{"id": m, "object": "model", "created": 0, "owned_by": "tests"} for m in MODELS]
            self._send_json(200, {"object": "list", "data": data})
            return
        if request.method != "POST" or request.path != "/v1/chat/completions":
            self._send_json(404, _error_body("Not found.", "invalid_request_error"))
            return
        if not isinstance(request.body, dict) or not isinstance(request.body.get("messages"), list):
            self._send_json(400, _error_body("'messages' is required.", "invalid_request_error"))
            return

        behaviour = server._next_behaviour()
        if isinstance(behaviour, Error):
            self._send_json(
                behaviour.status,
                _error_body(behaviour.message, behaviour.type),
                dict(behaviour.headers),
            )
        elif isinstance(behaviour, Hang):
            self.timer = asyncio.get_running_loop().call_later(behaviour.seconds, self._hung_up)
        elif isinstance(behaviour, Raw):
            self._raw(behaviour)
        elif isinstance(behaviour, Break) and not request.body.get("stream"):
            self._cut()
        elif request.body.get("stream"):
            self._stream(request, behaviour)
        else:
            self._after(behaviour.ttft, lambda: self._complete(request, behaviour))

    def _control(self, request: RecordedRequest) -> None:
        server = self.server
        if request.method == "POST" and request.path == "/_fake/queue":
            items = request.body if isinstance(request.body, list) else [request.body]
            try:
                server.enqueue(*(behaviour_from_dict(item) for item in items))
            except (TypeError, ValueError) as exc:
                self._send_json(400, _error_body(str(exc), "invalid_request_error"))
                return
            self._send_json(200, {"queued": len(server.queue)})
        elif request.method == "POST" and request.path == "/_fake/default":
            try:
                default = server.set_default(**(request.body or {}))
            except TypeError as exc:
                self._send_json(400, _error_body(str(exc), "invalid_request_error"))
                return
            self._send_json(200, dataclasses.asdict(default))
        elif request.method == "GET" and request.path == "/_fake/requests":
            self._send_json(200, [r.as_dict() for r in list(server.requests)])
        elif request.method == "POST" and request.path == "/_fake/reset":
            server.reset()
            self._send_json(200, {"reset": True})
        else:
            self._send_json(404, _error_body("Not found.", "invalid_request_error"))

    # Answers ------------------------------------------------------------

    def _stream(self, request: RecordedRequest, behaviour: Reply | Break) -> None:
        body = request.body
        model = getattr(behaviour, "model", None) or body.get("model") or MODELS[0]
        # Every event of this stream starts the same; the rest of each is encoded once
        # per text (the benchmark's model sends the same answer thousands of times).
        prefix = b'data: {"id":"%s","object":"chat.completion.chunk","created":%d,"model":%s,' % (
            self.server._next_id().encode(),
            int(time.time()),
            json.dumps(model).encode(),
        ) + b'"system_fingerprint":"fp_fake",'

        def event(fields: bytes) -> bytes:
            return _chunk(prefix + fields + b"\n\n")

        deltas = _content_choices(behaviour.text)
        # Like the real API: the first chunk carries the role and no content.
        events = [event(_ROLE_CHOICE), *(event(fields) for fields in deltas)]
        if isinstance(behaviour, Break):
            self._write(_STREAM_HEAD + b"".join(events[: behaviour.after + 1]))
            self._cut()
            return
        finish_reason = behaviour.finish_reason
        if behaviour.tool_calls:
            events += [event(fields) for fields in _tool_call_choices(behaviour.tool_calls)]
            finish_reason = "tool_calls" if finish_reason == "stop" else finish_reason
        tail = event(_finish_choice(finish_reason))
        if (body.get("stream_options") or {}).get("include_usage"):
            usage = json.dumps(_usage(body, len(deltas)), separators=(",", ":"))
            tail += event(b'"choices":[],"usage":%s}' % usage.encode())
        tail += _chunk(b"data: [DONE]\n\n") + b"0\r\n\r\n"
        # The role chunk goes with the first token, each later token after token_delay;
        # the headers at once (in the same write when nothing is to wait for).
        first = b"".join(events[:2])
        if behaviour.ttft > 0:
            self._write(_STREAM_HEAD)
        else:
            first = _STREAM_HEAD + first
        self.pending = [first, *events[2:], tail]
        self.delay = behaviour.token_delay
        self._after(behaviour.ttft, self._tick)

    def _raw(self, behaviour: Raw) -> None:
        events = [_chunk(b"data: %s\n\n" % event.encode()) for event in behaviour.events]
        if behaviour.repeat and events:
            events.extend([events[-1]] * behaviour.repeat)
        tail = (_chunk(b"data: [DONE]\n\n") if behaviour.done else b"") + b"0\r\n\r\n"
        self.pending = [_STREAM_HEAD + (events[0] if events else b""), *events[1:], tail]
        self.delay = behaviour.token_delay
        self._tick()

    def _tick(self) -> None:
        if self.delay <= 0:
            chunks, self.pending = self.pending, []
        else:
            chunks = [self.pending.pop(0)]
        if not self.pending:
            # Set before the last write: the client may close as soon as it has it.
            self._completed()
        self._write(b"".join(chunks))
        if self.pending:
            # The finishing chunks follow the last token at once.
            delay = 0 if len(self.pending) == 1 else self.delay
            self._after(delay, self._tick)
        else:
            self._done()

    def _complete(self, request: RecordedRequest, behaviour: Reply) -> None:
        body = request.body
        message: dict[str, Any] = {"role": "assistant", "content": behaviour.text}
        if behaviour.tool_calls:
            message["tool_calls"] = [
                {"id": call_id, "type": "function", "function": {"name": name, "arguments": args}}
                for call_id, name, args in _tool_calls(behaviour.tool_calls)
            ]
        self._send_json(
            200,
            {
                "id": self.server._next_id(),
                "object": "chat.completion",
                "created": int(time.time()),
                "model": behaviour.model or body.get("model") or MODELS[0],
                "system_fingerprint": "fp_fake",
                "choices": [
                    {
                        "index": 0,
                        "message": message,
                        "logprobs": None,
                        "finish_reason": "tool_calls"
                        if behaviour.tool_calls
                        else behaviour.finish_reason,
                    }
                ],
                "usage": _usage(body, len(split_into_deltas(behaviour.text))),
            },
        )

    def _hung_up(self) -> None:
        """The end of a :class:`Hang`: nothing was sent; close."""
        self.timer = None
        self._completed()
        self.current = None
        if self.transport is not None:
            self.transport.close()

    def _cut(self) -> None:
        """Close in the middle of a response (a :class:`Break`)."""
        self.current = None
        if self.transport is not None:
            self.transport.close()

    # Plumbing -----------------------------------------------------------

    def _after(self, delay: float, then: Callable[[], None]) -> None:
        if delay <= 0:
            then()
        else:
            self.timer = asyncio.get_running_loop().call_later(delay, self._fire, then)

    def _fire(self, then: Callable[[], None]) -> None:
        self.timer = None
        if self.transport is not None:
            then()

    def _cancel_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def _completed(self) -> None:
        if self.current is not None:
            self.current.completed.set()

    def _send_json(
        self, status: int, payload: Any, headers: dict[str, str] | None = None
    ) -> None:
        data = json.dumps(payload).encode()
        lines = [
            f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}",
            "Content-Type: application/json",
            f"Content-Length: {len(data)}",
            *(f"{name}: {value}" for name, value in (headers or {}).items()),
        ]
        self._completed()
        self._write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + data)
        self._done()

    def _done(self) -> None:
        """The response is sent: close if the client asked to, else read the next request."""
        self.current = None
        if self.close_when_done:
            if self.transport is not None:
                self.transport.close()
            return
        if self.buffer:
            # Not from here: _next_request may be what called us.
            asyncio.get_running_loop().call_soon(self._next_request)


_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


_STREAM_HEAD = (
    b"HTTP/1.1 200 OK\r\n"
    b"Content-Type: text/event-stream; charset=utf-8\r\n"
    b"Cache-Control: no-cache\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n"
)
_ROLE_CHOICE = (
    b'"choices":[{"index":0,"delta":{"role":"assistant","content":""},'
    b'"logprobs":null,"finish_reason":null}]}'
)


@functools.lru_cache(maxsize=64)
def _content_choices(text: str) -> tuple[bytes, ...]:
    """The ``choices`` (and the closing brace) of each content event of ``text``."""
    return tuple(
        b'"choices":[{"index":0,"delta":{"content":%s},"logprobs":null,"finish_reason":null}]}'
        % json.dumps(delta).encode()
        for delta in split_into_deltas(text)
    )


def _tool_calls(calls: tuple[dict[str, Any], ...]) -> list[tuple[str, str, str]]:
    """``(id, name, arguments as JSON text)`` of each scripted call."""
    made = []
    for index, call in enumerate(calls):
        arguments = call.get("arguments", {})
        text = arguments if isinstance(arguments, str) else json.dumps(arguments)
        made.append((str(call.get("id") or f"call_fake{index}"), str(call["name"]), text))
    return made


def _tool_call_choices(calls: tuple[dict[str, Any], ...]) -> list[bytes]:
    """The events of ``calls``: each call's id and name, then its arguments in three
    pieces, the calls' pieces interleaved (as parallel calls may arrive)."""

    def choice(tool_delta: dict[str, Any]) -> bytes:
        delta = json.dumps({"tool_calls": [tool_delta]}, separators=(",", ":")).encode()
        return b'"choices":[{"index":0,"delta":%s,"logprobs":null,"finish_reason":null}]}' % delta

    made = _tool_calls(calls)
    events = [
        choice(
            {
                "index": index,
                "id": call_id,
                "type": "function",
                "function": {"name": name, "arguments": ""},
            }
        )
        for index, (call_id, name, _args) in enumerate(made)
    ]
    for part in range(3):
        for index, (_id, _name, args) in enumerate(made):
            size = -(-len(args) // 3) or 1
            piece = args[part * size : (part + 1) * size]
            if piece:
                events.append(choice({"index": index, "function": {"arguments": piece}}))
    return events


def _finish_choice(finish_reason: str) -> bytes:
    return b'"choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":%s}]}' % (
        json.dumps(finish_reason).encode()
    )


def _chunk(data: bytes) -> bytes:
    """One chunk of a chunked HTTP/1.1 body."""
    return b"%x\r\n%s\r\n" % (len(data), data)


def _error_body(message: str, type_: str, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": None, "code": code}}


def _usage(body: dict[str, Any], completion_tokens: int) -> dict[str, int]:
    prompt = sum(
        len(str(m.get("content", "")).split()) for m in body["messages"] if isinstance(m, dict)
    )
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt + completion_tokens,
    }


# As a process -------------------------------------------------------------------


class FakeOpenAIProcess:
    """A fake OpenAI server process, scripted over its ``/_fake/`` HTTP API."""

    def __init__(self, process: ServerProcess, url: str) -> None:
        self.process = process
        #: The base URL for the SDK, ending in ``/v1``.
        self.url = url
        self.control = url.removesuffix("/v1") + "/_fake"

    def queue(self, kind: str = "reply", **behaviour: Any) -> None:
        """Queue what the next chat completions request gets (see :func:`behaviour_from_dict`)."""
        self._post("queue", {"kind": kind, **behaviour})

    def call_tools(self, *calls: tuple[str, Any], text: str = "") -> None:
        """Queue an answer that calls tools (see :meth:`FakeOpenAIServer.call_tools`)."""
        self.queue(
            text=text, tool_calls=[{"name": name, "arguments": args} for name, args in calls]
        )

    def set_default(self, **reply: Any) -> dict[str, Any]:
        """Change the reply sent when nothing is queued (fields of :class:`Reply`)."""
        return self._post("default", reply)

    def chat_requests(self) -> list[dict[str, Any]]:
        """The recorded ``POST /v1/chat/completions`` requests, oldest first."""
        status, body = http("GET", f"{self.control}/requests")
        assert status == 200, body
        return [r for r in body if r["path"].endswith("/chat/completions")]

    def reset(self) -> None:
        self._post("reset", None)

    def stop(self) -> None:
        self.process.stop()

    def _post(self, what: str, body: Any) -> Any:
        status, answer = http("POST", f"{self.control}/{what}", body)
        assert status == 200, answer
        return answer


def start_fake_openai(
    log_dir: Path,
    *,
    reply: str = MODEL_REPLY,
    api_key: str | None = API_KEY,
    record: bool = True,
) -> FakeOpenAIProcess:
    """Start ``python -m tests.support.openai_server`` on a free port; return once it
    accepts connections (its output goes to ``log_dir``)."""
    argv = [sys.executable, "-m", "tests.support.openai_server", "--port", "0", "--reply", reply]
    if api_key is not None:
        argv += ["--api-key", api_key]
    if not record:
        argv.append("--no-record")
    process = ServerProcess(
        "fake OpenAI server", argv, env=project_env(), log_path=log_dir / "fake-openai.log"
    )
    try:
        url = process.wait_for_line("listening on ")
    except BaseException:
        process.stop()
        raise
    return FakeOpenAIProcess(process, url)


def _new_event_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m tests.support.openai_server",
        description="Serve a fake OpenAI-compatible API on 127.0.0.1.",
    )
    parser.add_argument("--port", type=int, default=0, help="port (0: any free port)")
    parser.add_argument("--reply", default=DEFAULT_REPLY, help="the default answer")
    parser.add_argument("--ttft-ms", type=float, default=0.0, help="time to first token")
    parser.add_argument("--token-ms", type=float, default=0.0, help="delay between tokens")
    parser.add_argument("--api-key", default=None, help="require this bearer token")
    parser.add_argument(
        "--no-record", action="store_true", help="keep no requests (long benchmark runs)"
    )
    args = parser.parse_args(argv)
    # Thousands of benchmark sessions may wait on the model at once.
    raise_file_limit()
    server = FakeOpenAIServer(
        port=args.port,
        default_reply=args.reply,
        ttft=args.ttft_ms / 1000,
        token_delay=args.token_ms / 1000,
        api_key=args.api_key,
        record=not args.no_record,
    )

    def ready(url: str) -> None:
        print(f"listening on {url}", flush=True)

    async def run() -> None:
        task = asyncio.ensure_future(server.serve_forever(ready))
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await task

    with asyncio.Runner(loop_factory=_new_event_loop) as runner:
        runner.run(run())
    sys.stdout.flush()


if __name__ == "__main__":
    main()
