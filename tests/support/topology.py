"""Two chat server processes sharing Redis and PostgreSQL, as docs/deployment.md says.

The fixtures of ``tests/production/conftest.py`` build a :class:`Topology`
on the machine's services or on private ones; the tests of
tests/production drive it.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from tests.support.chat_servers import ChatServer, ServerSpec, start_chat_servers
from tests.support.openai_server import API_KEY
from tests.support.processes import project_env
from tests.support.services import PrivatePostgres, PrivateRedis
from tests.support.websocket import ChatClient

#: The knowledge base the servers answer from (the end-to-end tests' own).
KNOWLEDGE_FILE = Path(__file__).resolve().parents[1] / "e2e" / "knowledge.json"
#: The Redis database of the machine's Redis these tests may use.
SHARED_REDIS_DB = 5
#: Messages a visitor may send per minute to the shared topology's processes.
SHARED_RATE = 3
#: Messages containing this are refused by a trigger in the private PostgreSQL.
DB_FAILURE_MARK = "[db-fail]"


@dataclass
class Topology:
    """Server processes and the services they share."""

    servers: list[ChatServer]
    env: dict[str, str]
    database_url: str
    redis_url: str
    prefix: str
    redis: PrivateRedis | None = None
    answers_redis: PrivateRedis | None = None
    postgres: PrivatePostgres | None = None

    def sql(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        """Rows of a query on the servers' database."""
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            cursor = conn.execute(query, params)  # type: ignore[arg-type]
            return cursor.fetchall() if cursor.description else []

    def messages(self, session_id: str) -> list[tuple[str, str]]:
        """``(role, content)`` of a session's stored messages, oldest first."""
        return [
            (role, content)
            for role, content in self.sql(
                "SELECT role, content FROM sophie_chat_chatmessage WHERE session_id = %s "
                "ORDER BY created_at, id",
                uuid.UUID(session_id),
            )
        ]

    async def two_tabs(
        self, open_chat: Callable[[ChatServer], Awaitable[tuple[ChatClient, Any]]]
    ) -> tuple[ChatClient, ChatClient, dict[str, Any]]:
        """A conversation started in a tab on the first process and open in a tab on the
        second: ``(tab_a, tab_b, session)``."""
        first, second = self.servers
        tab_a, _ = await open_chat(first)
        session = await tab_a.start()
        tab_b, _ = await open_chat(second)
        resumed = await tab_b.start(resume_token=session["resume_token"])
        assert resumed["type"] == "session", resumed
        assert resumed["session_id"] == session["session_id"], resumed
        return tab_a, tab_b, session


def topology_env(
    *, redis_url: str, database_url: str, prefix: str, model_url: str, rate: str, **extra: str
) -> dict[str, str]:
    return project_env(
        DJANGO_SETTINGS_MODULE="tests.production.settings",
        REDIS_URL=redis_url,
        DATABASE_URL=database_url,
        SOPHIE_TOPOLOGY_PREFIX=prefix,
        SOPHIE_TOPOLOGY_RATE=rate,
        SOPHIE_E2E_OPENAI_BASE_URL=model_url,
        SOPHIE_E2E_OPENAI_API_KEY=API_KEY,
        **extra,
    )


def start_topology_servers(env: dict[str, str], work: Path) -> list[ChatServer]:
    """A uvicorn and a daphne process on free ports, started side by side, both healthy."""
    servers = start_chat_servers(
        {kind: ServerSpec(kind, env) for kind in ("uvicorn", "daphne")}, work
    )
    return [servers["uvicorn"], servers["daphne"]]
