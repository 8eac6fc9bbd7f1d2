"""WebSocket clients of the chat, speaking protocol v1 JSON frames.

Two transports, one way of talking: :class:`CommunicatorClient` drives the
consumer in the test's own process through Channels' ``WebsocketCommunicator``
(the ``connect`` fixture in ``tests/conftest.py``); :class:`ChatClient` is a
real WebSocket client (``websockets``) of a real server process (the
``open_chat`` fixtures of tests/e2e and tests/production).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from sophie_chat.routing import websocket_urlpatterns


class ProtocolClient:
    """What every chat client of the tests does; a transport sends and receives text."""

    async def send_text(self, text: str) -> None:
        raise NotImplementedError

    async def receive_text(self, timeout: float) -> str:
        """The next text frame; :class:`TimeoutError` after ``timeout`` seconds."""
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    async def send(self, frame: dict[str, Any] | str) -> None:
        await self.send_text(frame if isinstance(frame, str) else json.dumps(frame))

    async def receive(self, timeout: float = 5) -> dict[str, Any]:
        return json.loads(await self.receive_text(timeout))

    async def receive_until(self, *types: str, timeout: float = 10) -> list[dict[str, Any]]:
        """Every frame up to and including the first whose type is one of ``types``."""
        frames = []
        async with asyncio.timeout(timeout):
            while True:
                frames.append(await self.receive(timeout))
                if frames[-1]["type"] in types:
                    return frames

    async def start(self, **fields: Any) -> dict[str, Any]:
        """``session_init`` with ``fields``; its reply (``session`` or ``error``)."""
        await self.send({"type": "session_init", **fields})
        return await self.receive()

    async def ask(self, content: str, client_message_id: str | None = None) -> list[dict[str, Any]]:
        """Send a message; every frame up to its ``stream_end`` or an ``error``."""
        frame: dict[str, Any] = {"type": "message", "content": content}
        if client_message_id is not None:
            frame["client_message_id"] = client_message_id
        await self.send(frame)
        return await self.receive_until("stream_end", "error")


class CommunicatorClient(ProtocolClient):
    """The chat consumer in this process, through Channels' test communicator."""

    def __init__(self, communicator: WebsocketCommunicator) -> None:
        self.communicator = communicator

    async def send_text(self, text: str) -> None:
        await self.communicator.send_to(text_data=text)

    async def receive_text(self, timeout: float) -> str:
        return await self.communicator.receive_from(timeout=timeout)

    async def nothing_more(self, timeout: float = 0.2) -> bool:
        """Whether no frame arrives within ``timeout`` (the consumer keeps running)."""
        return await self.communicator.receive_nothing(timeout=timeout)

    async def close(self) -> None:
        await self.communicator.disconnect()


def make_communicator(
    *,
    user: Any = None,
    path: str = "/ws/chat/",
    headers: list[tuple[bytes, bytes]] | None = None,
    client: tuple[str, int] = ("203.0.113.7", 50000),
) -> WebsocketCommunicator:
    """A communicator for the chat's routes, as ``user`` (anonymous by default) from ``client``."""
    communicator = WebsocketCommunicator(
        URLRouter(websocket_urlpatterns), path, headers=headers or []
    )
    communicator.scope["user"] = user or AnonymousUser()
    communicator.scope["client"] = client
    return communicator


class ChatClient(ProtocolClient):
    """A real WebSocket client of a chat server process."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws

    async def send_text(self, text: str) -> None:
        await self.ws.send(text)

    async def receive_text(self, timeout: float) -> str:
        async with asyncio.timeout(timeout):
            return await self.ws.recv()

    async def close_code(self, timeout: float = 5) -> int | None:
        """Wait until the server closes the connection; its close code."""
        async with asyncio.timeout(timeout):
            with contextlib.suppress(ConnectionClosed):
                while True:
                    await self.ws.recv()
        return self.ws.close_code

    async def close(self) -> None:
        await self.ws.close()


async def open_chat_client(
    ws_url: str, origin: str, headers: dict[str, str] | None = None
) -> ChatClient:
    """A :class:`ChatClient` connected to ``ws_url``.

    It sends ``origin`` (the server's own site, as a browser on one of its
    pages would) and ``headers``, and never goes through a proxy.
    """
    ws = await connect(
        ws_url, origin=origin, proxy=None, open_timeout=10, additional_headers=headers
    )
    return ChatClient(ws)


def frame_types(frames: list[dict[str, Any]]) -> list[str]:
    return [frame["type"] for frame in frames]


def dumps(frames: list[dict[str, Any]]) -> str:
    """Frames as indented JSON, for an assertion's message."""
    return json.dumps(frames, indent=1, ensure_ascii=False)
