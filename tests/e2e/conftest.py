"""Real server processes for the end-to-end tests, and a real WebSocket client.

The fake OpenAI-compatible server (``python -m tests.openai_server``) runs as
one process per test session. The Django test project (``tests.asgi``, with
``tests.e2e.settings``) runs under uvicorn and under daphne, each in several
configurations started side by side (see :data:`CONFIGS`), once per module
and server; tests share them and never restart one. Every process binds
127.0.0.1 on a free port, writes its output to a file, and is stopped when
its fixture ends; a failing test's report shows the output of the servers
it used.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

import sophie_chat

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
KNOWLEDGE_FILE = HERE / "knowledge.json"
READY_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
OPENAI_API_KEY = "sk-e2e-0123456789abcdef"
MODEL_REPLY = "Cleaning a two-bedroom flat takes about three hours."
LOG_TAIL_CHARS = 12_000

# Processes started by these fixtures and not yet stopped, for failure reports.
_running: list[ServerProcess] = []


# Plumbing ---------------------------------------------------------------------


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on at the time of the call."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# Never through a proxy from the environment: every server here is on 127.0.0.1.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http(method: str, url: str, body: Any = None, timeout: float = 5) -> tuple[int, Any]:
    """``(status, parsed JSON or text)`` of one HTTP request."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with _opener.open(request, timeout=timeout) as response:
            status, raw, kind = (
                response.status,
                response.read(),
                response.headers.get_content_type(),
            )
    except urllib.error.HTTPError as error:
        status, raw, kind = error.code, error.read(), error.headers.get_content_type()
    text = raw.decode("utf-8", "replace")
    return status, json.loads(text) if kind == "application/json" else text


def python_path() -> str:
    """PYTHONPATH for a child process: the project root (for ``tests.*``), and
    ``src/`` when this test run imports sophie_chat from the source tree
    rather than from an installed wheel."""
    entries = [str(ROOT)]
    package_parent = Path(sophie_chat.__file__).resolve().parent.parent
    if package_parent == ROOT / "src":
        entries.append(str(package_parent))
    return os.pathsep.join(entries)


def child_env(**overrides: str) -> dict[str, str]:
    """This process's environment without what would steer a child elsewhere."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("OPENAI_", "SOPHIE_E2E_", "DJANGO_"))
        and name not in {"PYTHONPATH", "DATABASE_URL"}
    }
    env["PYTHONUNBUFFERED"] = "1"
    env.update(overrides)
    return env


class ServerProcess:
    """A process we started; stdout and stderr go to ``log_path``."""

    def __init__(
        self, name: str, argv: list[str], *, env: Mapping[str, str], cwd: Path, log_path: Path
    ) -> None:
        self.name = name
        self.argv = argv
        self.log_path = log_path
        with open(log_path, "wb") as log:
            # A session of its own, so stopping it stops anything it started.
            self.popen = subprocess.Popen(
                argv,
                cwd=cwd,
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        _running.append(self)

    def output(self) -> str:
        return self.log_path.read_text("utf-8", "replace")

    def tail(self) -> str:
        text = self.output()
        return text if len(text) <= LOG_TAIL_CHARS else "...\n" + text[-LOG_TAIL_CHARS:]

    def exited(self) -> bool:
        return self.popen.poll() is not None

    def failure(self, what: str) -> str:
        return f"{self.name} {what}.\n$ {' '.join(self.argv)}\n--- output ---\n{self.tail()}"

    def send_signal(self, signum: int) -> None:
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signum)

    def stop(self) -> None:
        """Stop the process (SIGTERM, then SIGKILL) and wait for it."""
        stop_all([self])


def stop_all(processes: list[ServerProcess]) -> None:
    """Stop ``processes`` side by side: SIGTERM to all, SIGKILL to any still there after
    :data:`STOP_TIMEOUT`."""
    for process in processes:
        if process in _running:
            _running.remove(process)
        process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    for process in processes:
        try:
            process.popen.wait(max(deadline - time.monotonic(), 0.01))
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGKILL)
            process.popen.wait(STOP_TIMEOUT)


def wait_until_healthy(process: ServerProcess, health_url: str) -> None:
    """Poll ``health_url`` until it answers 200; fail with the server's output if it never does."""
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if process.exited():
            raise ServerDidNotStart(process.failure(f"exited with {process.popen.returncode}"))
        with contextlib.suppress(OSError):
            if http("GET", health_url, timeout=2)[0] == 200:
                return
        time.sleep(0.05)
    raise ServerDidNotStart(process.failure(f"did not answer {health_url} in {READY_TIMEOUT} s"))


class ServerDidNotStart(RuntimeError):
    def port_taken(self) -> bool:
        return "address already in use" in str(self).lower()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.failed:
        # The servers the test asked for, else every server still running.
        funcargs = getattr(item, "funcargs", {})
        used = [v.process for v in funcargs.values() if isinstance(v, ChatServer | FakeOpenAI)]
        for process in used or list(_running):
            report.sections.append((f"output of {process.name}", process.tail()))
    return report


# The fake OpenAI server ----------------------------------------------------------


class FakeOpenAI:
    """The fake OpenAI server process, scripted over its ``/_fake/`` HTTP API."""

    def __init__(self, process: ServerProcess, url: str) -> None:
        self.process = process
        #: The base URL for the SDK, ending in ``/v1``.
        self.url = url
        self.control = url.removesuffix("/v1") + "/_fake"

    def queue(self, kind: str = "reply", **behaviour: Any) -> None:
        """Queue what the next chat completions request gets (see tests/openai_server.py)."""
        status, body = http("POST", f"{self.control}/queue", {"kind": kind, **behaviour})
        assert status == 200, body

    def chat_requests(self) -> list[dict[str, Any]]:
        """The recorded ``POST /v1/chat/completions`` requests, oldest first."""
        status, body = http("GET", f"{self.control}/requests")
        assert status == 200, body
        return [r for r in body if r["path"].endswith("/chat/completions")]

    def reset(self) -> None:
        status, body = http("POST", f"{self.control}/reset")
        assert status == 200, body


def start_fake_openai(log_dir: Path) -> FakeOpenAI:
    process = ServerProcess(
        "fake OpenAI server",
        [
            sys.executable,
            "-m",
            "tests.openai_server",
            "--port",
            "0",
            "--reply",
            MODEL_REPLY,
            "--api-key",
            OPENAI_API_KEY,
        ],
        env=child_env(PYTHONPATH=python_path()),
        cwd=ROOT,
        log_path=log_dir / "fake-openai.log",
    )
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        for line in process.output().splitlines():
            if line.startswith("listening on "):
                return FakeOpenAI(process, line.removeprefix("listening on ").strip())
        if process.exited():
            break
        time.sleep(0.02)
    process.stop()
    raise ServerDidNotStart(process.failure("did not say it was listening"))


@pytest.fixture(scope="session")
def fake_openai_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeOpenAI]:
    server = start_fake_openai(tmp_path_factory.mktemp("fake-openai"))
    yield server
    server.process.stop()


@pytest.fixture
def fake_openai(fake_openai_process: FakeOpenAI) -> FakeOpenAI:
    """The fake OpenAI server, with no queued behaviour and no recorded request."""
    fake_openai_process.reset()
    return fake_openai_process


# The Django test project ---------------------------------------------------------


@dataclass(frozen=True)
class ServerConfig:
    """What a chat server process is configured with (see tests/e2e/settings.py)."""

    rate: str = "1000/m"
    max_connections_per_client: int = 20
    allow_anonymous: bool = True
    #: Send model requests to a port nothing listens on instead of the fake server.
    model_unreachable: bool = False

    def env(self, model_url: str) -> dict[str, str]:
        return {
            "SOPHIE_E2E_OPENAI_BASE_URL": model_url,
            "SOPHIE_E2E_OPENAI_API_KEY": OPENAI_API_KEY,
            "SOPHIE_E2E_RATE": self.rate,
            "SOPHIE_E2E_MAX_CONNECTIONS_PER_CLIENT": str(self.max_connections_per_client),
            "SOPHIE_E2E_ALLOW_ANONYMOUS": "1" if self.allow_anonymous else "0",
        }


CONFIGS: dict[str, ServerConfig] = {
    "default": ServerConfig(),
    # Tight limits: 2 messages a minute and 1 connection per visitor.
    "limited": ServerConfig(rate="2/m", max_connections_per_client=1),
    "members_only": ServerConfig(allow_anonymous=False),
    "model_down": ServerConfig(model_unreachable=True),
}

SERVER_KINDS = ("uvicorn", "daphne")


def server_argv(kind: str, port: int) -> list[str]:
    if kind == "uvicorn":
        return [
            sys.executable,
            "-m",
            "uvicorn",
            "tests.asgi:application",
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
        return [
            sys.executable,
            "-m",
            "daphne",
            "-b",
            "127.0.0.1",
            "-p",
            str(port),
            "tests.asgi:application",
        ]
    raise ValueError(f"unknown ASGI server {kind!r}")


def django_env(database: Path, **extra: str) -> dict[str, str]:
    return child_env(
        PYTHONPATH=python_path(),
        DJANGO_SETTINGS_MODULE="tests.e2e.settings",
        SOPHIE_E2E_DATABASE=str(database),
        **extra,
    )


def manage(env: Mapping[str, str], *args: str) -> None:
    """``python -m django ARGS`` in the e2e settings; fails the test with its output."""
    result = subprocess.run(
        [sys.executable, "-m", "django", *args],
        cwd=ROOT,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"django {' '.join(args)}:\n{result.stdout}\n{result.stderr}"


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


@pytest.fixture(scope="session")
def template_database(
    tmp_path_factory: pytest.TempPathFactory, fake_openai_process: FakeOpenAI
) -> Path:
    """A migrated SQLite file holding tests/e2e/knowledge.json; each server gets a copy."""
    database = tmp_path_factory.mktemp("e2e-db") / "template.sqlite3"
    env = django_env(database, **CONFIGS["default"].env(fake_openai_process.url))
    manage(env, "migrate", "--noinput", "-v", "0")
    manage(env, "populate_knowledge_base", str(KNOWLEDGE_FILE))
    return database


def start_chat_servers(
    kind: str, configs: Mapping[str, ServerConfig], model_url: str, template: Path, work: Path
) -> dict[str, ChatServer]:
    """Start one ``kind`` server per config, side by side; return once all are healthy.

    A port taken between choosing it and binding it is retried with another.
    """
    pending = dict(configs)
    started: dict[str, ChatServer] = {}
    try:
        for _attempt in range(3):
            launched: dict[str, ChatServer] = {}
            for name, config in pending.items():
                database = work / f"{kind}-{name}.sqlite3"
                if not database.exists():
                    shutil.copyfile(template, database)
                url = (
                    f"http://127.0.0.1:{free_port()}/v1" if config.model_unreachable else model_url
                )
                port = free_port()
                launched[name] = ChatServer(
                    kind,
                    name,
                    port,
                    ServerProcess(
                        f"{kind} ({name} config)",
                        server_argv(kind, port),
                        env=django_env(database, **config.env(url)),
                        cwd=ROOT,
                        log_path=work / f"{kind}-{name}-{port}.log",
                    ),
                )
            retry: dict[str, ServerConfig] = {}
            for name, server in launched.items():
                try:
                    wait_until_healthy(server.process, f"{server.http_url}/chat/health/")
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
        raise ServerDidNotStart(f"no free port for {kind} after 3 tries")
    except BaseException:
        stop_all([server.process for server in started.values()])
        raise


@pytest.fixture(scope="module", params=SERVER_KINDS)
def chat_servers(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    template_database: Path,
    fake_openai_process: FakeOpenAI,
) -> Iterator[dict[str, ChatServer]]:
    """Every configuration of :data:`CONFIGS` served by one ASGI server (uvicorn, daphne)."""
    kind = request.param
    servers = start_chat_servers(
        kind,
        CONFIGS,
        fake_openai_process.url,
        template_database,
        tmp_path_factory.mktemp(f"e2e-{kind}"),
    )
    yield servers
    crashed = [s.process for s in servers.values() if s.process.exited()]
    stop_all([server.process for server in servers.values()])
    if crashed:
        pytest.fail("\n\n".join(p.failure("exited while the tests ran") for p in crashed))


@pytest.fixture
def chat_server(chat_servers: dict[str, ChatServer]) -> ChatServer:
    """The chat as a site would run it: anonymous visitors welcome, a generous rate."""
    return chat_servers["default"]


@pytest.fixture
def limited_server(chat_servers: dict[str, ChatServer]) -> ChatServer:
    """A chat server allowing 2 messages a minute and one connection per visitor.

    Connections of earlier tests are closed before the test starts.
    """
    server = chat_servers["limited"]
    server.wait_until_idle()
    return server


@pytest.fixture
def members_only_server(chat_servers: dict[str, ChatServer]) -> ChatServer:
    """A chat server refusing visitors who are not logged in (``ALLOW_ANONYMOUS`` off)."""
    return chat_servers["members_only"]


@pytest.fixture
def model_down_server(chat_servers: dict[str, ChatServer]) -> ChatServer:
    """A chat server whose model endpoint is a port nothing listens on."""
    return chat_servers["model_down"]


# The WebSocket client ---------------------------------------------------------------


class ChatClient:
    """A real WebSocket client of the chat, speaking protocol v1 JSON frames."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws

    async def send(self, frame: dict[str, Any] | str) -> None:
        await self.ws.send(frame if isinstance(frame, str) else json.dumps(frame))

    async def receive(self, timeout: float = 5) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            return json.loads(await self.ws.recv())

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

    async def close_code(self, timeout: float = 5) -> int | None:
        """Wait until the server closes the connection; its close code."""
        async with asyncio.timeout(timeout):
            with contextlib.suppress(ConnectionClosed):
                while True:
                    await self.ws.recv()
        return self.ws.close_code

    async def close(self) -> None:
        await self.ws.close()


@pytest.fixture
async def open_chat() -> AsyncIterator[Any]:
    """``client, first_frame = await open_chat(server)``; closed after the test.

    The first frame is ``welcome``, or the ``error`` of a refused connection.
    The client sends the ``Origin`` of the server's own site, as a browser on
    one of its pages would, and never goes through a proxy.
    """
    opened: list[ChatClient] = []

    async def _open(server: ChatServer, query: str = "") -> tuple[ChatClient, dict[str, Any]]:
        ws = await connect(
            server.ws_url + query, origin=server.http_url, proxy=None, open_timeout=10
        )
        client = ChatClient(ws)
        opened.append(client)
        return client, await client.receive()

    yield _open
    for client in opened:
        with contextlib.suppress(Exception):
            await client.close()
