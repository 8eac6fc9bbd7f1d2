"""Real server processes for the end-to-end tests, and a real WebSocket client.

The Django test project (``tests.asgi``, with ``tests.e2e.settings``) runs
under uvicorn and under daphne, each in several configurations started side
by side (see :data:`CONFIGS`), once per module and server; tests share them
and never restart one. The fake OpenAI server is the session's
(``fake_openai`` in ``tests/conftest.py``). Every process binds 127.0.0.1 on
a free port and writes its output to a file, shown in a failing test's
report.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.chat_servers import (
    SERVER_KINDS,
    ChatServer,
    ServerSpec,
    start_chat_servers,
    stop_chat_servers,
)
from tests.support.network import free_port
from tests.support.openai_server import API_KEY, FakeOpenAIProcess
from tests.support.processes import prepare_database, project_env
from tests.support.websocket import ChatClient, open_chat_client

KNOWLEDGE_FILE = Path(__file__).resolve().parent / "knowledge.json"


@dataclass(frozen=True)
class ServerConfig:
    """What a chat server process is configured with (see tests/e2e/settings.py)."""

    rate: str = "1000/m"
    max_connections_per_client: int = 20
    allow_anonymous: bool = True
    #: Send model requests to a port nothing listens on instead of the fake server.
    model_unreachable: bool = False

    def env(self, database: Path, model_url: str) -> dict[str, str]:
        if self.model_unreachable:
            model_url = f"http://127.0.0.1:{free_port()}/v1"
        return project_env(
            DJANGO_SETTINGS_MODULE="tests.e2e.settings",
            SOPHIE_E2E_DATABASE=str(database),
            SOPHIE_E2E_OPENAI_BASE_URL=model_url,
            SOPHIE_E2E_OPENAI_API_KEY=API_KEY,
            SOPHIE_E2E_RATE=self.rate,
            SOPHIE_E2E_MAX_CONNECTIONS_PER_CLIENT=str(self.max_connections_per_client),
            SOPHIE_E2E_ALLOW_ANONYMOUS="1" if self.allow_anonymous else "0",
        )


CONFIGS: dict[str, ServerConfig] = {
    "default": ServerConfig(),
    # Tight limits: 2 messages a minute and 1 connection per visitor.
    "limited": ServerConfig(rate="2/m", max_connections_per_client=1),
    "members_only": ServerConfig(allow_anonymous=False),
    "model_down": ServerConfig(model_unreachable=True),
}


@pytest.fixture(scope="session")
def template_database(
    tmp_path_factory: pytest.TempPathFactory, fake_openai_process: FakeOpenAIProcess
) -> Path:
    """A migrated SQLite file holding tests/e2e/knowledge.json; each server gets a copy."""
    database = tmp_path_factory.mktemp("e2e-db") / "template.sqlite3"
    prepare_database(CONFIGS["default"].env(database, fake_openai_process.url), KNOWLEDGE_FILE)
    return database


@pytest.fixture(scope="module", params=SERVER_KINDS)
def chat_servers(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    template_database: Path,
    fake_openai_process: FakeOpenAIProcess,
) -> Iterator[dict[str, ChatServer]]:
    """Every configuration of :data:`CONFIGS` served by one ASGI server (uvicorn, daphne)."""
    kind = request.param
    work = tmp_path_factory.mktemp(f"e2e-{kind}")
    specs = {}
    for name, config in CONFIGS.items():
        database = work / f"{kind}-{name}.sqlite3"
        env = config.env(database, fake_openai_process.url)
        specs[name] = ServerSpec(kind, env, template=template_database, database=database)
    servers = start_chat_servers(specs, work)
    yield servers
    stop_chat_servers(list(servers.values()))


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


@pytest.fixture
async def open_chat() -> AsyncIterator[Any]:
    """``client, first_frame = await open_chat(server)``; closed after the test.

    The first frame is ``welcome``, or the ``error`` of a refused connection.
    """
    opened: list[ChatClient] = []

    async def _open(server: ChatServer, query: str = "") -> tuple[ChatClient, dict[str, Any]]:
        client = await open_chat_client(server.ws_url + query, origin=server.http_url)
        opened.append(client)
        return client, await client.receive()

    yield _open
    for client in opened:
        with contextlib.suppress(Exception):
            await client.close()
