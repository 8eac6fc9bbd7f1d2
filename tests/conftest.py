"""Fixtures of the whole suite; the helpers they use are in ``tests/support/``.

Tests marked ``redis``, ``postgres`` or ``browser`` need that service. On a
developer's machine without it they skip with a message naming what is
missing; under ``CI=true`` they never skip: a missing service fails them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from typing import Any

import django
import pytest
from channels.db import database_sync_to_async
from django.conf import settings
from django.core.cache import caches

from sophie_chat import backends, db
from sophie_chat.connections import registry
from tests.support.openai_server import FakeOpenAIProcess, start_fake_openai
from tests.support.processes import RUNNING, ServerProcess
from tests.support.services import service_missing, skip_unless_ci
from tests.support.websocket import CommunicatorClient, make_communicator


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect the tests of a Django feature this Django does not have.

    ``django_csp``: Django's own Content-Security-Policy, new in Django 6.0.
    Deselected (not skipped) elsewhere, as tox deselects by marker.
    """
    if django.VERSION >= (6, 0):
        return
    deselected = [item for item in items if item.get_closest_marker("django_csp")]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = [item for item in items if item not in deselected]


def pytest_runtest_setup(item: pytest.Item) -> None:
    for marker in ("redis", "postgres", "browser"):
        if item.get_closest_marker(marker) is None:
            continue
        missing = service_missing(marker)
        if missing is not None:
            skip_unless_ci(f"needs {marker}: {missing}")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """A failing test's report shows the output of the server processes it used; for a
    test of real servers that used none by name, of every one still running."""
    report = yield
    if report.failed and RUNNING:
        used = list(dict.fromkeys(_processes_in(getattr(item, "funcargs", {}).values())))
        if not used and (item.get_closest_marker("server") or item.get_closest_marker("browser")):
            used = list(RUNNING)
        for process in used:
            report.sections.append((f"output of {process.name}", process.tail()))
    return report


def _processes_in(values: Iterable[Any]) -> Iterator[ServerProcess]:
    for value in values:
        if isinstance(value, ServerProcess):
            yield value
        elif isinstance(getattr(value, "process", None), ServerProcess):
            yield value.process
        elif isinstance(value, Mapping):
            yield from _processes_in(value.values())
        elif isinstance(value, list | tuple):
            yield from _processes_in(value)
        elif isinstance(getattr(value, "servers", None), list):
            yield from _processes_in(value.servers)


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


@pytest.fixture
async def connect() -> AsyncIterator[Any]:
    """``client, welcome = await connect(user=..., path=...)``: the consumer in this
    process (see :func:`tests.support.websocket.make_communicator`); closed after the test."""
    opened: list[CommunicatorClient] = []

    async def _connect(**kwargs: Any) -> tuple[CommunicatorClient, dict[str, Any]]:
        communicator = make_communicator(**kwargs)
        connected, _subprotocol = await communicator.connect()
        assert connected
        client = CommunicatorClient(communicator)
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


@pytest.fixture(scope="session")
def fake_openai_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeOpenAIProcess]:
    """The fake OpenAI server process of the session, shared by every server process
    the tests start (it answers :data:`tests.support.openai_server.MODEL_REPLY`)."""
    server = start_fake_openai(tmp_path_factory.mktemp("fake-openai"))
    yield server
    server.stop()


@pytest.fixture
def fake_openai(fake_openai_process: FakeOpenAIProcess) -> FakeOpenAIProcess:
    """The fake OpenAI server process, with no queued behaviour and no recorded request."""
    fake_openai_process.reset()
    return fake_openai_process
