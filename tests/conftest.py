"""Shared fixtures.

Tests marked ``redis``, ``postgres`` or ``browser`` need that service. On a
developer's machine without it they skip with a message naming what is
missing; under ``CI=true`` they never skip: a missing service fails them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlparse

import pytest
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.core.cache import caches

from sophie_chat import backends, db
from sophie_chat.connections import registry
from sophie_chat.routing import websocket_urlpatterns

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _reachable(url: str, default_port: int) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection(
            (parsed.hostname or "127.0.0.1", parsed.port or default_port), timeout=1
        ):
            return True
    except OSError:
        return False


def _service_missing(marker: str) -> str | None:
    if marker == "redis":
        url = os.environ.get("REDIS_URL", "")
        if not url:
            return "REDIS_URL is not set"
        return None if _reachable(url, 6379) else f"Redis at {url} is not answering"
    if marker == "postgres":
        url = os.environ.get("DATABASE_URL", "")
        if not url.startswith(("postgres://", "postgresql://")):
            return "DATABASE_URL does not point at PostgreSQL"
        return None if _reachable(url, 5432) else f"PostgreSQL at {url} is not answering"
    if marker == "browser":
        if not os.path.exists(os.environ.get("CHROMIUM", "/usr/bin/chromium")):
            return "Chromium is not installed (apt-get install chromium)"
        try:
            import playwright  # noqa: F401
        except ImportError:
            return "Playwright is not installed"
    return None


def pytest_runtest_setup(item: pytest.Item) -> None:
    for marker in ("redis", "postgres", "browser"):
        if item.get_closest_marker(marker) is None:
            continue
        missing = _service_missing(marker)
        if missing is None:
            continue
        if IN_CI:
            pytest.fail(f"CI=true and this test needs {marker}: {missing}")
        pytest.skip(f"needs {marker}: {missing}")


@pytest.fixture(autouse=True)
def _fresh_state() -> Any:
    """Each test starts with empty caches, fresh backends and no open connections."""
    for cache in caches.all(initialized_only=True):
        cache.clear()
    # Local-memory caches keep their entries in module storage that outlives a
    # cache handler reset (override_settings(CACHES=...)), and a handler made
    # inside a test's task is not seen here: clear them by alias, always.
    for alias, config in settings.CACHES.items():
        if config.get("BACKEND") == "django.core.cache.backends.locmem.LocMemCache":
            caches[alias].clear()
    backends.reset()
    registry.reset()
    yield
    backends.reset()


@pytest.fixture
def dummy_llm():
    """The test settings' DummyBackend, to script replies: ``dummy_llm.enqueue("...")``."""
    model = backends.llm()
    model.reset()
    return model


class Client:
    """A WebSocket client of the chat, speaking JSON frames."""

    def __init__(self, communicator: WebsocketCommunicator) -> None:
        self.communicator = communicator

    async def send(self, frame: dict[str, Any] | str) -> None:
        text = frame if isinstance(frame, str) else json.dumps(frame)
        await self.communicator.send_to(text_data=text)

    async def receive(self, timeout: float = 3) -> dict[str, Any]:
        return json.loads(await self.communicator.receive_from(timeout=timeout))

    async def receive_until(self, frame_type: str, timeout: float = 5) -> list[dict[str, Any]]:
        """Every frame up to and including the first of ``frame_type``."""
        frames = []
        while True:
            frame = await self.receive(timeout)
            frames.append(frame)
            if frame["type"] == frame_type:
                return frames

    async def nothing_more(self, timeout: float = 0.2) -> bool:
        return await self.communicator.receive_nothing(timeout=timeout)

    async def start(self, **fields: Any) -> dict[str, Any]:
        """``session_init`` and its ``session`` reply."""
        await self.send({"type": "session_init", **fields})
        return await self.receive()

    async def ask(self, content: str, client_message_id: str | None = None) -> list[dict[str, Any]]:
        """Send a message; every frame up to its ``stream_end`` (or an error)."""
        frame: dict[str, Any] = {"type": "message", "content": content}
        if client_message_id:
            frame["client_message_id"] = client_message_id
        await self.send(frame)
        frames = []
        while True:
            received = await self.receive(5)
            frames.append(received)
            if received["type"] in ("stream_end", "error"):
                return frames

    async def close(self) -> None:
        await self.communicator.disconnect()


def make_communicator(
    *,
    user: Any = None,
    path: str = "/ws/chat/",
    headers: list[tuple[bytes, bytes]] | None = None,
    client: tuple[str, int] = ("203.0.113.7", 50000),
) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(
        URLRouter(websocket_urlpatterns), path, headers=headers or []
    )
    communicator.scope["user"] = user or AnonymousUser()
    communicator.scope["client"] = client
    return communicator


@pytest.fixture
async def connect() -> AsyncIterator[Any]:
    """``client, welcome = await connect(user=..., path=...)``; closed after the test."""
    opened: list[Client] = []

    async def _connect(**kwargs: Any) -> tuple[Client, dict[str, Any]]:
        communicator = make_communicator(**kwargs)
        connected, _subprotocol = await communicator.connect()
        assert connected
        client = Client(communicator)
        opened.append(client)
        return client, await client.receive()

    yield _connect
    for client in opened:
        with contextlib.suppress(Exception):
            await client.close()
    # A cancelled turn's last query may still run in a database thread;
    # wait for it so the test database can be flushed.
    await database_sync_to_async(lambda: None)()
    await asyncio.to_thread(db.reset_database_threads, wait=True)
