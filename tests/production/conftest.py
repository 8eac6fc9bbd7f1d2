"""Two ASGI server processes sharing Redis and PostgreSQL, as docs/deployment.md says.

:func:`shared_topology` runs them on the machine's Redis (database 5, every
key under a prefix of its own) and PostgreSQL (a database of its own, dropped
at the end), for the multi-process tests. :func:`private_topology` runs them
on a private ``redis-server`` (plus a second one for the answer cache) and a
private PostgreSQL cluster, which the failure tests stop, pause and restart.
In both, one process is uvicorn and the other daphne, configured by
``tests.production.settings`` (the deployment docs' settings block), talking
to the fake OpenAI server. Servers live for a module; tests never restart one.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
import redis

from tests.support.chat_servers import ChatServer, stop_chat_servers
from tests.support.openai_server import FakeOpenAIProcess
from tests.support.processes import prepare_database
from tests.support.services import (
    PrivatePostgres,
    PrivateRedis,
    missing_binaries,
    skip_unless_ci,
)
from tests.support.topology import (
    DB_FAILURE_MARK,
    KNOWLEDGE_FILE,
    SHARED_RATE,
    SHARED_REDIS_DB,
    Topology,
    start_topology_servers,
    topology_env,
)
from tests.support.websocket import ChatClient, open_chat_client


@pytest.fixture(scope="module")
def shared_topology(
    tmp_path_factory: pytest.TempPathFactory, fake_openai_process: FakeOpenAIProcess
) -> Iterator[Topology]:
    """Two server processes on the machine's Redis and PostgreSQL (REDIS_URL, DATABASE_URL)."""
    with _shared_topology(tmp_path_factory, fake_openai_process) as topology:
        yield topology


@pytest.fixture(scope="module")
def handoff_topology(
    tmp_path_factory: pytest.TempPathFactory, fake_openai_process: FakeOpenAIProcess
) -> Iterator[Topology]:
    """:func:`shared_topology` with ``HANDOFF`` on (docs/handoff.md)."""
    with _shared_topology(
        tmp_path_factory, fake_openai_process, SOPHIE_TOPOLOGY_HANDOFF="1"
    ) as topology:
        yield topology


@contextlib.contextmanager
def _shared_topology(
    tmp_path_factory: pytest.TempPathFactory,
    fake_openai_process: FakeOpenAIProcess,
    **extra_env: str,
) -> Iterator[Topology]:
    prefix = f"sophie-mp-{uuid.uuid4().hex[:12]}"
    redis_parts = urlsplit(os.environ["REDIS_URL"])
    redis_url = urlunsplit(redis_parts._replace(path=f"/{SHARED_REDIS_DB}"))
    admin_url = os.environ["DATABASE_URL"]
    database = prefix.replace("-", "_")
    database_url = urlunsplit(urlsplit(admin_url)._replace(path=f"/{database}"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{database}"')  # type: ignore[arg-type]
    env = topology_env(
        redis_url=redis_url,
        database_url=database_url,
        prefix=prefix,
        model_url=fake_openai_process.url,
        rate=f"{SHARED_RATE}/m",
        **extra_env,
    )
    servers: list[ChatServer] = []
    try:
        prepare_database(env, KNOWLEDGE_FILE)
        servers = start_topology_servers(env, tmp_path_factory.mktemp("shared-topology"))
        yield Topology(servers, env, database_url, redis_url, prefix)
    finally:
        if servers:
            stop_chat_servers(servers)
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')  # type: ignore[arg-type]
        client = redis.Redis.from_url(redis_url)
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()


@pytest.fixture(scope="module")
def private_topology(
    tmp_path_factory: pytest.TempPathFactory, fake_openai_process: FakeOpenAIProcess
) -> Iterator[Topology]:
    """Two server processes on a private Redis, a private answer-cache Redis and a
    private PostgreSQL, which tests may stop and restart (see :func:`services_up`)."""
    missing = missing_binaries()
    if missing:
        skip_unless_ci(f"needs private Redis and PostgreSQL servers: {missing}")
    work = Path(tempfile.mkdtemp(prefix="sophie-topology-"))
    main_redis = PrivateRedis(work, "redis")
    answers_redis = PrivateRedis(work, "answers-redis")
    postgres = PrivatePostgres()
    servers: list[ChatServer] = []
    try:
        main_redis.start()
        answers_redis.start()
        postgres.init()
        postgres.start()
        postgres.execute("CREATE ROLE sophie LOGIN")
        postgres.execute("CREATE DATABASE sophie OWNER sophie")
        database_url = postgres.url(user="sophie", database="sophie")
        prefix = "sophie-private"
        env = topology_env(
            redis_url=main_redis.url(0),
            database_url=database_url,
            prefix=prefix,
            model_url=fake_openai_process.url,
            rate="1000/m",
            REDIS_CACHE_URL=answers_redis.url(0),
        )
        prepare_database(env, KNOWLEDGE_FILE)
        # A real database error, on demand: storing a message marked DB_FAILURE_MARK fails.
        postgres.execute(
            "CREATE FUNCTION refuse_message() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'refused by the test trigger'; END $$; "
            "CREATE TRIGGER refuse_marked_messages BEFORE INSERT ON sophie_chat_chatmessage "
            f"FOR EACH ROW WHEN (strpos(NEW.content, '{DB_FAILURE_MARK}') > 0) "
            "EXECUTE FUNCTION refuse_message()",
            database="sophie",
        )
        servers = start_topology_servers(env, work)
        yield Topology(
            servers,
            env,
            database_url,
            main_redis.url(0),
            prefix,
            redis=main_redis,
            answers_redis=answers_redis,
            postgres=postgres,
        )
    finally:
        if servers:
            stop_chat_servers(servers)
        main_redis.stop()
        answers_redis.stop()
        postgres.remove()
        with contextlib.suppress(OSError):
            for path in work.iterdir():
                path.unlink()
            work.rmdir()


@pytest.fixture
def services_up(private_topology: Topology) -> Iterator[Topology]:
    """The private topology with every service running, before and after the test."""

    def ensure() -> None:
        assert private_topology.redis is not None
        assert private_topology.answers_redis is not None
        assert private_topology.postgres is not None
        private_topology.redis.ensure_running()
        private_topology.answers_redis.ensure_running()
        private_topology.postgres.ensure_running()

    ensure()
    yield private_topology
    ensure()


@pytest.fixture
def visitor_ip() -> str:
    """An address of this test's own (sent as X-Forwarded-For), so limits count per test."""
    number = uuid.uuid4().int
    return f"10.{number % 250}.{(number >> 8) % 250}.{(number >> 16) % 250 + 1}"


@pytest.fixture
async def open_chat(visitor_ip: str) -> AsyncIterator[Any]:
    """``client, welcome = await open_chat(server)``: a visitor from ``visitor_ip``."""
    opened: list[ChatClient] = []

    async def _open(server: ChatServer) -> tuple[ChatClient, dict[str, Any]]:
        client = await open_chat_client(
            server.ws_url, origin=server.http_url, headers={"X-Forwarded-For": visitor_ip}
        )
        opened.append(client)
        return client, await client.receive()

    yield _open
    for client in opened:
        with contextlib.suppress(Exception):
            await client.close()
