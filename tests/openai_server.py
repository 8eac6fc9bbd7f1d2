"""A small, real OpenAI-compatible HTTP server for tests.

It speaks enough of the OpenAI HTTP API for the official ``openai`` SDK:
``POST /v1/chat/completions`` (SSE streaming with ``stream: true``, a JSON
body otherwise) and ``GET /v1/models``. It is plain ``asyncio`` over
HTTP/1.1 (every response closes its connection), so a test controls exactly
what goes over the wire: delays, status codes, a hang, a stream cut short.

In a test (the ``openai_server`` fixture in ``tests/llm/conftest.py`` yields
one)::

    with FakeOpenAIServer(default_reply="Hi!") as server:
        server.reply("Hello there", token_delay=0.01)
        server.error(500)
        server.rate_limit(retry_after=7)
        server.hang(5)
        server.break_after(2, "This answer is cut short")
        ...  # point the SDK at server.url
        assert server.requests[0].body["model"] == "gpt-4o-mini"

Behaviours are consumed in order, one per chat-completions request; when
the queue is empty the default reply is sent. Every request is recorded
(:class:`RecordedRequest`), including whether the client disconnected before
the response was complete.

As a separate process (for end-to-end tests)::

    python -m tests.openai_server --port 0 --reply "Hello" --ttft-ms 50 --token-ms 5

prints ``listening on http://127.0.0.1:N/v1`` (flushed) once it accepts
connections. Such a process is scripted over HTTP: ``POST /_fake/queue`` with
a behaviour as JSON (``{"kind": "reply", "text": "..."}``, ``{"kind":
"error", "status": 500}``, ``{"kind": "rate_limit", "retry_after": 3}``,
``{"kind": "hang", "seconds": 5}``, ``{"kind": "break", "after": 2, "text":
"..."}``), ``GET /_fake/requests`` lists the recorded requests and ``POST
/_fake/reset`` forgets queue and records.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import signal
import socket
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Break",
    "Error",
    "FakeOpenAIServer",
    "Hang",
    "RecordedRequest",
    "Reply",
    "split_into_deltas",
]

DEFAULT_REPLY = "Hello! This is the fake OpenAI server."
MODELS = ("gpt-4o-mini", "fake-model")


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


Behaviour = Reply | Error | Hang | Break


def behaviour_from_dict(data: dict[str, Any]) -> Behaviour:
    """Build a behaviour from its JSON form (the ``/_fake/queue`` endpoint)."""
    data = dict(data)
    kind = data.pop("kind", "reply")
    if kind == "reply":
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


class _Disconnected(Exception):
    """The client went away while we were writing or waiting."""


# The server -----------------------------------------------------------------


class FakeOpenAIServer:
    """An OpenAI-compatible server on 127.0.0.1, scriptable per test.

    Use it as a context manager (it then runs in a background thread with
    its own event loop), or call :meth:`serve_forever` from ``asyncio.run``
    (the command line). ``api_key``, when given, is required as the bearer
    token (other requests get a 401, like the real API).
    """

    def __init__(
        self,
        *,
        port: int = 0,
        default_reply: str = DEFAULT_REPLY,
        ttft: float = 0.0,
        token_delay: float = 0.0,
        api_key: str | None = None,
    ) -> None:
        self.host = "127.0.0.1"
        self.port = port
        self.default = Reply(text=default_reply, ttft=ttft, token_delay=token_delay)
        self.api_key = api_key
        self.queue: deque[Behaviour] = deque()
        self.requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[asyncio.Task[None]] = set()
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

    # Running in a thread ------------------------------------------------

    def start(self) -> FakeOpenAIServer:
        """Start serving in a background thread; returns once connections are accepted."""
        if self._thread is not None:
            raise RuntimeError("already started")
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name="fake-openai", daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._listen(), loop).result(timeout=10)
        return self

    def stop(self) -> None:
        """Stop serving, drop open connections and join the thread."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
        self._loop = self._thread = None

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # Running in the foreground (command line) ---------------------------

    async def serve_forever(self, ready: Any = None) -> None:
        """Serve until cancelled; ``ready(url)`` is called once listening."""
        await self._listen()
        if ready is not None:
            ready(self.url)
        try:
            await asyncio.Event().wait()
        finally:
            await self._shutdown()

    # Internals ----------------------------------------------------------

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._on_connection, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._connections):
            task.cancel()
        if self._connections:
            await asyncio.gather(*self._connections, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def _on_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            await self._serve_one(reader, writer)
        except (_Disconnected, ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            pass
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _serve_one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        request_line, *header_lines = head.decode("latin-1").split("\r\n")
        method, target, _version = request_line.split(" ", 2)
        headers: dict[str, str] = {}
        for line in header_lines:
            if ":" in line:
                name, value = line.split(":", 1)
                headers[name.strip().lower()] = value.strip()
        raw = b""
        if int(headers.get("content-length") or 0):
            raw = await reader.readexactly(int(headers["content-length"]))
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        path = target.split("?", 1)[0]
        record = RecordedRequest(method=method, path=path, headers=headers, body=body)

        if path.startswith("/_fake/"):
            await self._control(record, writer)
            return
        with self._lock:
            self.requests.append(record)

        # The client sends nothing after its request (every response closes
        # the connection), so end of input means it went away.
        watcher = asyncio.ensure_future(self._watch_disconnect(reader, record))
        try:
            await self._respond(record, writer)
        finally:
            watcher.cancel()
        record.completed.set()

    async def _watch_disconnect(
        self, reader: asyncio.StreamReader, record: RecordedRequest
    ) -> None:
        with contextlib.suppress(ConnectionError):
            while await reader.read(4096):
                pass
        if not record.completed.is_set():
            record.disconnected.set()

    async def _respond(self, record: RecordedRequest, writer: asyncio.StreamWriter) -> None:
        if self.api_key is not None and record.authorization != f"Bearer {self.api_key}":
            await self._send_json(
                writer,
                401,
                _error_body("Incorrect API key.", "invalid_request_error", "invalid_api_key"),
            )
            return
        if record.method == "GET" and record.path == "/v1/models":
            data = [{"id": m, "object": "model", "created": 0, "owned_by": "tests"} for m in MODELS]
            await self._send_json(writer, 200, {"object": "list", "data": data})
            return
        if record.method != "POST" or record.path != "/v1/chat/completions":
            await self._send_json(writer, 404, _error_body("Not found.", "invalid_request_error"))
            return
        if not isinstance(record.body, dict) or not isinstance(record.body.get("messages"), list):
            await self._send_json(
                writer, 400, _error_body("'messages' is required.", "invalid_request_error")
            )
            return

        behaviour = self._next_behaviour()
        if isinstance(behaviour, Error):
            await self._send_json(
                writer,
                behaviour.status,
                _error_body(behaviour.message, behaviour.type),
                dict(behaviour.headers),
            )
        elif isinstance(behaviour, Hang):
            await self._wait(record, behaviour.seconds)
        elif record.body.get("stream"):
            await self._stream(record, writer, behaviour)
        else:
            await self._complete(record, writer, behaviour)

    async def _wait(self, record: RecordedRequest, seconds: float) -> None:
        """Sleep ``seconds``; raise :class:`_Disconnected` if the client leaves first."""
        if seconds <= 0:
            if record.disconnected.is_set():
                raise _Disconnected
            return
        deadline = time.monotonic() + seconds
        while (remaining := deadline - time.monotonic()) > 0:
            if record.disconnected.is_set():
                raise _Disconnected
            await asyncio.sleep(min(remaining, 0.01))
        if record.disconnected.is_set():
            raise _Disconnected

    async def _stream(
        self, record: RecordedRequest, writer: asyncio.StreamWriter, behaviour: Reply | Break
    ) -> None:
        body = record.body
        model = getattr(behaviour, "model", None) or body.get("model") or MODELS[0]
        self._ids += 1
        base = {
            "id": f"chatcmpl-fake{self._ids}",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
            "system_fingerprint": "fp_fake",
        }

        async def event(choices: list[dict[str, Any]], **extra: Any) -> None:
            data = json.dumps({**base, "choices": choices, **extra})
            await self._write_chunk(writer, f"data: {data}\n\n".encode())

        def choice(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
            return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}

        writer.write(
            b"HTTP/1.1 200 OK\r\n"
            b"Content-Type: text/event-stream; charset=utf-8\r\n"
            b"Cache-Control: no-cache\r\n"
            b"Transfer-Encoding: chunked\r\n"
            b"Connection: close\r\n\r\n"
        )
        await self._drain(writer)

        deltas = split_into_deltas(behaviour.text)
        if isinstance(behaviour, Reply):
            await self._wait(record, behaviour.ttft)
        # Like the real API: the first chunk carries the role and no content.
        await event([choice({"role": "assistant", "content": ""})])
        for index, delta in enumerate(deltas):
            if isinstance(behaviour, Break) and index == behaviour.after:
                # Cut the connection in the middle of the chunked body.
                writer.close()
                raise _Disconnected
            if isinstance(behaviour, Reply) and index:
                await self._wait(record, behaviour.token_delay)
            await event([choice({"content": delta})])
        if isinstance(behaviour, Break):
            writer.close()
            raise _Disconnected
        await event([choice({}, behaviour.finish_reason)])
        if (body.get("stream_options") or {}).get("include_usage"):
            await event([], usage=_usage(body, len(deltas)))
        # Set before the last write: the client may close as soon as it has it.
        record.completed.set()
        done = b"data: [DONE]\n\n"
        writer.write(f"{len(done):x}\r\n".encode() + done + b"\r\n0\r\n\r\n")
        await self._drain(writer)

    async def _complete(
        self, record: RecordedRequest, writer: asyncio.StreamWriter, behaviour: Reply | Break
    ) -> None:
        body = record.body
        if isinstance(behaviour, Break):
            writer.close()
            raise _Disconnected
        await self._wait(record, behaviour.ttft)
        self._ids += 1
        deltas = split_into_deltas(behaviour.text)
        record.completed.set()
        await self._send_json(
            writer,
            200,
            {
                "id": f"chatcmpl-fake{self._ids}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": behaviour.model or body.get("model") or MODELS[0],
                "system_fingerprint": "fp_fake",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": behaviour.text},
                        "logprobs": None,
                        "finish_reason": behaviour.finish_reason,
                    }
                ],
                "usage": _usage(body, len(deltas)),
            },
        )

    async def _control(self, record: RecordedRequest, writer: asyncio.StreamWriter) -> None:
        if record.method == "POST" and record.path == "/_fake/queue":
            items = record.body if isinstance(record.body, list) else [record.body]
            try:
                self.enqueue(*(behaviour_from_dict(item) for item in items))
            except (TypeError, ValueError) as exc:
                await self._send_json(writer, 400, _error_body(str(exc), "invalid_request_error"))
                return
            await self._send_json(writer, 200, {"queued": len(self.queue)})
        elif record.method == "GET" and record.path == "/_fake/requests":
            await self._send_json(writer, 200, [r.as_dict() for r in list(self.requests)])
        elif record.method == "POST" and record.path == "/_fake/reset":
            self.reset()
            await self._send_json(writer, 200, {"reset": True})
        else:
            await self._send_json(writer, 404, _error_body("Not found.", "invalid_request_error"))

    async def _send_json(
        self,
        writer: asyncio.StreamWriter,
        status: int,
        payload: Any,
        headers: dict[str, str] | None = None,
    ) -> None:
        data = json.dumps(payload).encode()
        lines = [
            f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}",
            "Content-Type: application/json",
            f"Content-Length: {len(data)}",
            "Connection: close",
            *(f"{name}: {value}" for name, value in (headers or {}).items()),
        ]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + data)
        await self._drain(writer)

    async def _write_chunk(self, writer: asyncio.StreamWriter, data: bytes) -> None:
        writer.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        await self._drain(writer)

    @staticmethod
    async def _drain(writer: asyncio.StreamWriter) -> None:
        if writer.is_closing():
            raise _Disconnected
        try:
            await writer.drain()
        except ConnectionError as exc:
            raise _Disconnected from exc


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


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (at the time of the call)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# Command line ---------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m tests.openai_server",
        description="Serve a fake OpenAI-compatible API on 127.0.0.1.",
    )
    parser.add_argument("--port", type=int, default=0, help="port (0: any free port)")
    parser.add_argument("--reply", default=DEFAULT_REPLY, help="the default answer")
    parser.add_argument("--ttft-ms", type=float, default=0.0, help="time to first token")
    parser.add_argument("--token-ms", type=float, default=0.0, help="delay between tokens")
    parser.add_argument("--api-key", default=None, help="require this bearer token")
    args = parser.parse_args(argv)
    server = FakeOpenAIServer(
        port=args.port,
        default_reply=args.reply,
        ttft=args.ttft_ms / 1000,
        token_delay=args.token_ms / 1000,
        api_key=args.api_key,
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

    asyncio.run(run())
    sys.stdout.flush()


if __name__ == "__main__":
    main()
