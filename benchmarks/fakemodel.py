"""A fast fake OpenAI-compatible model server, so the model's latency is known.

``POST /v1/chat/completions`` with ``"stream": true`` answers ``tokens``
word tokens as server-sent events, like OpenAI's API: a first chunk with the
role, the first token after ``ttft_ms``, each next one ``token_ms`` later,
then a chunk with ``finish_reason``, a usage chunk when
``stream_options.include_usage`` is set, and ``data: [DONE]``. Without
``stream`` it answers one JSON body. Connections are kept alive (HTTP/1.1,
chunked), as an SDK's connection pool expects.

It is a bare :class:`asyncio.Protocol` (on uvloop when installed) with the
events pre-encoded, so it is never the bottleneck of a run: it costs a few
microseconds per token. ``POST /_bench/config`` with ``{"ttft_ms": ...,
"token_ms": ..., "tokens": ...}`` changes the model between scenarios;
``GET /_bench/stats`` counts the requests served.

Run it alone::

    python -m benchmarks.fakemodel --port 8100 --ttft-ms 200 --token-ms 10 --tokens 20

It prints ``listening on http://127.0.0.1:PORT/v1`` once it accepts connections.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import time
from dataclasses import asdict, dataclass
from typing import Any

from benchmarks.serve import raise_file_limit

# The answer's words; token i is " " + WORDS[i % len(WORDS)] (the first without the space).
WORDS = (
    "Sure",
    "a",
    "standard",
    "cleaning",
    "of",
    "a",
    "two",
    "bedroom",
    "flat",
    "takes",
    "about",
    "three",
    "hours",
    "and",
    "starts",
    "at",
    "R$",
    "150",
    "per",
    "visit",
)


@dataclass
class ModelConfig:
    """How the fake model answers: delays in milliseconds, length in tokens."""

    ttft_ms: float = 0.0
    token_ms: float = 0.0
    tokens: int = 20

    def answer(self) -> list[str]:
        return [
            (WORDS[i % len(WORDS)] if i == 0 else " " + WORDS[i % len(WORDS)])
            for i in range(self.tokens)
        ]


def _chunk(data: bytes) -> bytes:
    """One HTTP/1.1 chunk."""
    return b"%x\r\n%s\r\n" % (len(data), data)


class _Stats:
    requests = 0
    streams = 0
    disconnects = 0


class _Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection; requests are answered one at a time."""

    def __init__(self, server: FakeModel) -> None:
        self.server = server
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.busy = False
        self.timer: asyncio.TimerHandle | None = None

    # asyncio.Protocol -----------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        self._next_request()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
            _Stats.disconnects += 1
        self.transport = None

    # HTTP -------------------------------------------------------------------

    def _next_request(self) -> None:
        while not self.busy and self.transport is not None:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buffer[:end]).decode("latin-1")
            request_line, _, header_text = head.partition("\r\n")
            length = 0
            for line in header_text.split("\r\n"):
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip())
            if len(self.buffer) < end + 4 + length:
                return
            body = bytes(self.buffer[end + 4 : end + 4 + length])
            del self.buffer[: end + 4 + length]
            method, target, _version = request_line.split(" ", 2)
            self._handle(method, target.split("?", 1)[0], body)

    def _send(self, status: str, payload: Any, content_type: str = "application/json") -> None:
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        assert self.transport is not None
        self.transport.write(
            b"HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n%s"
            % (status.encode(), content_type.encode(), len(data), data)
        )

    def _handle(self, method: str, path: str, body: bytes) -> None:
        server = self.server
        if path == "/v1/chat/completions" and method == "POST":
            try:
                request = json.loads(body)
            except ValueError:
                self._send("400 Bad Request", {"error": {"message": "bad JSON"}})
                return
            _Stats.requests += 1
            if request.get("stream"):
                self._stream(request)
            else:
                self._complete(request)
        elif path == "/health" or path == "/v1/models":
            self._send("200 OK", {"object": "list", "data": [{"id": "gpt-4o-mini"}]})
        elif path == "/_bench/config" and method == "POST":
            values = json.loads(body or b"{}")
            server.config = ModelConfig(**{**asdict(server.config), **values})
            self._send("200 OK", asdict(server.config))
        elif path == "/_bench/stats":
            self._send(
                "200 OK",
                {
                    "requests": _Stats.requests,
                    "streams": _Stats.streams,
                    "disconnects": _Stats.disconnects,
                    "config": asdict(server.config),
                },
            )
        else:
            self._send("404 Not Found", {"error": {"message": "not found"}})

    def _complete(self, request: dict[str, Any]) -> None:
        config = self.server.config
        text = "".join(config.answer())
        payload = {
            "id": "chatcmpl-bench",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": request.get("model") or "gpt-4o-mini",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 10, "completion_tokens": config.tokens, "total_tokens": 0},
        }
        self._send("200 OK", payload)

    # Streaming ----------------------------------------------------------------

    def _stream(self, request: dict[str, Any]) -> None:
        assert self.transport is not None
        config = self.server.config
        _Stats.streams += 1
        prefix = (
            b'data: {"id":"chatcmpl-bench%d","object":"chat.completion.chunk","created":%d,'
            b'"model":%s,"system_fingerprint":"fp_bench","choices":['
            % (_Stats.streams, int(time.time()), json.dumps(request.get("model") or "x").encode())
        )

        def event(choice: bytes, extra: bytes = b"") -> bytes:
            return _chunk(prefix + choice + b"]" + extra + b"}\n\n")

        tokens = [
            event(
                b'{"index":0,"delta":{"content":%s},"logprobs":null,"finish_reason":null}'
                % json.dumps(token).encode()
            )
            for token in config.answer()
        ]
        tail = event(b'{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}')
        if (request.get("stream_options") or {}).get("include_usage"):
            tail += _chunk(
                prefix
                + b'],"usage":{"prompt_tokens":%d,"completion_tokens":%d,"total_tokens":%d}}\n\n'
                % (len(body_words(request)), len(tokens), len(body_words(request)) + len(tokens))
            )
        tail += _chunk(b"data: [DONE]\n\n") + b"0\r\n\r\n"
        head = (
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\n"
            b"Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n"
        ) + event(b'{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}')
        self.busy = True
        if config.ttft_ms <= 0 and config.token_ms <= 0:
            self.transport.write(head + b"".join(tokens) + tail)
            self._done()
            return
        self.transport.write(head)
        self._pending = tokens
        self._tail = tail
        self._delay = config.token_ms / 1000
        self.timer = asyncio.get_running_loop().call_later(config.ttft_ms / 1000, self._tick)

    def _tick(self) -> None:
        self.timer = None
        if self.transport is None:
            return
        if self._delay <= 0:
            self.transport.write(b"".join(self._pending) + self._tail)
            self._done()
            return
        self.transport.write(self._pending.pop(0))
        if self._pending:
            self.timer = asyncio.get_running_loop().call_later(self._delay, self._tick)
        else:
            self.transport.write(self._tail)
            self._done()

    def _done(self) -> None:
        self.busy = False
        if self.buffer:
            self._next_request()


def body_words(request: dict[str, Any]) -> list[str]:
    """A rough prompt token count for the usage report."""
    words: list[str] = []
    for message in request.get("messages") or ():
        if isinstance(message, dict):
            words.extend(str(message.get("content", "")).split())
    return words


class FakeModel:
    """The server; :attr:`config` may be changed while it runs."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, config: ModelConfig | None = None):
        self.host = host
        self.port = port
        self.config = config or ModelConfig()
        self._server: asyncio.AbstractServer | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _Connection(self), self.host, self.port, backlog=4096
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None


def _new_event_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fakemodel", description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--ttft-ms", type=float, default=0.0, help="time to first token")
    parser.add_argument("--token-ms", type=float, default=0.0, help="time between tokens")
    parser.add_argument("--tokens", type=int, default=20, help="tokens per answer")
    args = parser.parse_args(argv)
    raise_file_limit()
    model = FakeModel(
        port=args.port,
        config=ModelConfig(ttft_ms=args.ttft_ms, token_ms=args.token_ms, tokens=args.tokens),
    )

    async def run() -> None:
        await model.start()
        print(f"listening on {model.url}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await model.close()

    loop = _new_event_loop()
    try:
        loop.run_until_complete(run())
    finally:
        loop.close()


if __name__ == "__main__":
    main()
