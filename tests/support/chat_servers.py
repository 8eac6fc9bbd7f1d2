"""The chat served for real: a Django project under uvicorn or daphne, on free ports.

Used by the end-to-end tests (``tests.asgi`` with ``tests.e2e.settings``,
several configurations side by side) and the production-topology tests
(``tests.production.settings``, a uvicorn and a daphne process sharing Redis
and PostgreSQL).
"""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.network import free_port, http
from tests.support.processes import ServerDidNotStart, ServerProcess, stop_all

SERVER_KINDS = ("uvicorn", "daphne")


def server_argv(kind: str, port: int, app: str = "tests.asgi:application") -> list[str]:
    """The command line of an ASGI server ``kind`` serving ``app`` on 127.0.0.1:``port``."""
    if kind == "uvicorn":
        return [
            sys.executable,
            "-m",
            "uvicorn",
            app,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            # What "auto" picks when websockets is installed; the legacy
            # "websockets" implementation is deprecated by uvicorn.
            "--ws",
            "websockets-sansio",
            "--lifespan",
            "off",
        ]
    if kind == "daphne":
        return [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), app]
    raise ValueError(f"unknown ASGI server {kind!r}")


@dataclass
class ChatServer:
    """One running chat server process."""

    kind: str
    name: str
    port: int
    process: ServerProcess

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/chat/"

    def health(self) -> dict[str, Any]:
        status, body = http("GET", f"{self.http_url}/chat/health/")
        assert status == 200, body
        return body

    def wait_until_idle(self, timeout: float = 5) -> None:
        """Wait until the server has let go of every chat connection (closed by earlier tests)."""
        deadline = time.monotonic() + timeout
        while (connections := self.health()["connections"]) != 0:
            assert time.monotonic() < deadline, f"{connections} connections still open"
            time.sleep(0.02)


@dataclass(frozen=True)
class ServerSpec:
    """A server to start: which ASGI server, with which environment and database copy."""

    kind: str
    env: Mapping[str, str]
    #: A database file copied to ``database`` before the first start (SQLite projects).
    template: Path | None = None
    database: Path | None = None


def start_chat_servers(specs: Mapping[str, ServerSpec], work: Path) -> dict[str, ChatServer]:
    """Start one server per spec, side by side; return once all are healthy.

    A port taken between choosing it and binding it is retried with another;
    if any server cannot start, those started are stopped.
    """
    pending = dict(specs)
    started: dict[str, ChatServer] = {}
    every: list[ServerProcess] = []
    try:
        for _attempt in range(3):
            launched: dict[str, ChatServer] = {}
            for name, spec in pending.items():
                copy = spec.template is not None and spec.database is not None
                if copy and not spec.database.exists():
                    shutil.copyfile(spec.template, spec.database)
                port = free_port()
                process = ServerProcess(
                    f"{spec.kind} ({name})",
                    server_argv(spec.kind, port),
                    env=spec.env,
                    log_path=work / f"{spec.kind}-{name}-{port}.log",
                )
                every.append(process)
                launched[name] = ChatServer(spec.kind, name, port, process)
            retry: dict[str, ServerSpec] = {}
            for name, server in launched.items():
                try:
                    server.process.wait_until_healthy(f"{server.http_url}/chat/health/")
                except ServerDidNotStart as error:
                    server.process.stop()
                    if not error.port_taken():
                        raise
                    retry[name] = pending[name]
                else:
                    started[name] = server
            if not retry:
                return started
            pending = retry
        raise ServerDidNotStart(f"no free port for {sorted(pending)} after 3 tries")
    except BaseException:
        stop_all(every)
        raise


def stop_chat_servers(servers: list[ChatServer]) -> None:
    """Stop ``servers``; fail with the output of any that exited on its own meanwhile."""
    crashed = [s.process for s in servers if s.process.exited()]
    stop_all([server.process for server in servers])
    if crashed:
        pytest.fail("\n\n".join(p.failure("exited while the tests ran") for p in crashed))
