"""The two baselines Sophie is measured against. Both speak protocol v1's
frames for a conversation (``welcome``, ``session``, ``message``,
``stream_start``, ``stream_delta``, ``stream_end``, ``pong``) against the same
fake model, and keep nothing: no storage, no limits, no retrieval, no cache.

* :class:`BareConsumer` is the floor of the stack: a plain Channels
  ``AsyncWebsocketConsumer`` reading the model's server-sent events with a
  minimal keep-alive HTTP/1.1 client (below), no SDK.
* :class:`NaiveConsumer` is what a tutorial writes: the same consumer
  relaying the official ``openai`` SDK's stream, one frame per chunk.
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import openai
from channels.generic.websocket import AsyncWebsocketConsumer

MODEL = "gpt-4o-mini"


def _model_url() -> str:
    return os.environ.get("BENCH_MODEL_URL", "http://127.0.0.1:8100/v1")


def _encode(frame: dict[str, Any]) -> str:
    return json.dumps(frame, ensure_ascii=False, separators=(",", ":"))


WELCOME = _encode(
    {
        "type": "welcome",
        "assistant": {"name": "Baseline"},
        "protocol": 1,
        "greeting": "Hi!",
        "limits": {"max_message_length": 2000},
    }
)


class ModelStreamClient:
    """Chat completions over raw asyncio streams, with a pool of idle connections."""

    def __init__(self, base_url: str) -> None:
        parts = urlsplit(base_url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.path = parts.path.rstrip("/") + "/chat/completions"
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def stream(self, messages: list[dict[str, str]]) -> AsyncIterator[str]:
        """Yield the answer's text deltas."""
        body = json.dumps({"model": MODEL, "messages": messages, "stream": True}).encode()
        if self.idle:
            reader, writer = self.idle.pop()
        else:
            reader, writer = await asyncio.open_connection(self.host, self.port)
        reusable = False
        try:
            writer.write(
                b"POST %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n%s"
                % (self.path.encode(), self.host.encode(), self.port, len(body), body)
            )
            head = await reader.readuntil(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(f"model answered {head[:40]!r}")
            pending = b""
            while True:
                size = int((await reader.readline()).strip(), 16)
                if size == 0:
                    await reader.readline()
                    reusable = True
                    return
                pending += (await reader.readexactly(size + 2))[:-2]
                *events, pending = pending.split(b"\n\n")
                for event in events:
                    data = event[6:] if event.startswith(b"data: ") else b""
                    if not data or data == b"[DONE]":
                        continue
                    for choice in json.loads(data).get("choices") or ():
                        content = choice.get("delta", {}).get("content")
                        if content:
                            yield content
        finally:
            if reusable:
                self.idle.append((reader, writer))
            else:
                writer.close()


_bare_client: ModelStreamClient | None = None
_naive_client: openai.AsyncOpenAI | None = None


class _BaselineConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        await self.accept()
        await self.send(text_data=WELCOME)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        frame = json.loads(text_data or "{}")
        kind = frame.get("type")
        if kind == "message":
            await self.answer(frame)
        elif kind == "session_init":
            await self.send(
                text_data=_encode(
                    {
                        "type": "session",
                        "session_id": str(uuid.uuid4()),
                        "resume_token": "-",
                        "resumed": False,
                        "status": "active",
                        "history": [],
                    }
                )
            )
        elif kind == "ping":
            await self.send(text_data='{"type":"pong"}')

    def deltas(self, content: str) -> AsyncIterator[str]:
        raise NotImplementedError

    async def answer(self, frame: dict[str, Any]) -> None:
        now = datetime.now(UTC).isoformat()
        question = {
            "id": str(uuid.uuid4()),
            "role": "user",
            "content": frame["content"],
            "created_at": now,
            "status": "complete",
            "metadata": {},
        }
        if frame.get("client_message_id"):
            question["client_message_id"] = frame["client_message_id"]
        await self.send(text_data=_encode({"type": "message", "message": question}))
        answer_id = str(uuid.uuid4())
        await self.send(
            text_data=_encode(
                {"type": "stream_start", "message_id": answer_id, "reply_to": question["id"]}
            )
        )
        parts = []
        async for delta in self.deltas(frame["content"]):
            parts.append(delta)
            await self.send(
                text_data=_encode({"type": "stream_delta", "message_id": answer_id, "delta": delta})
            )
        answer = {
            "id": answer_id,
            "role": "assistant",
            "content": "".join(parts),
            "created_at": datetime.now(UTC).isoformat(),
            "status": "complete",
            "reply_to": question["id"],
            "metadata": {"sources": [], "cached": False, "fallback": False},
        }
        await self.send(text_data=_encode({"type": "stream_end", "message": answer}))


class BareConsumer(_BaselineConsumer):
    """The floor: Channels plus the thinnest possible model client."""

    def deltas(self, content: str) -> AsyncIterator[str]:
        global _bare_client
        if _bare_client is None:
            _bare_client = ModelStreamClient(_model_url())
        return _bare_client.stream([{"role": "user", "content": content}])


class NaiveConsumer(_BaselineConsumer):
    """A tutorial's consumer: the ``openai`` SDK's stream, relayed chunk by chunk."""

    async def deltas(self, content: str) -> AsyncIterator[str]:
        global _naive_client
        if _naive_client is None:
            _naive_client = openai.AsyncOpenAI(
                api_key="sk-bench", base_url=_model_url(), max_retries=0
            )
        stream = await _naive_client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": content}], stream=True
        )
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                yield chunk.choices[0].delta.content
