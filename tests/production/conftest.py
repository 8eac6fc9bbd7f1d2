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
import json
import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
import redis
from websockets.asyncio.client import connect

from tests.conftest import IN_CI
from tests.e2e.conftest import (
    KNOWLEDGE_FILE,
    OPENAI_API_KEY,
    ROOT,
    ChatClient,
    ChatServer,
    FakeOpenAI,
    ServerDidNotStart,
    ServerProcess,
    child_env,
    free_port,
    python_path,
    server_argv,
    start_fake_openai,
    stop_all,
    wait_until_healthy,
)
from tests.production.services import PrivatePostgres, PrivateRedis, missing_binaries

#: The Redis database of the machine's Redis these tests may use.
SHARED_REDIS_DB = 5
#: Messages a visitor may send per minute to the shared topology's processes.
SHARED_RATE = 3
#: Messages containing this are refused by a trigger in the private PostgreSQL.
DB_FAILURE_MARK = "[db-fail]"

_running: list[ServerProcess] = []


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
    processes: list[ServerProcess] = field(default_factory=list)

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


def _server_env(
    *, redis_url: str, database_url: str, prefix: str, model_url: str, rate: str, **extra: str
) -> dict[str, str]:
    return child_env(
        PYTHONPATH=python_path(),
        DJANGO_SETTINGS_MODULE="tests.production.settings",
        REDIS_URL=redis_url,
        DATABASE_URL=database_url,
        SOPHIE_TOPOLOGY_PREFIX=prefix,
        SOPHIE_TOPOLOGY_RATE=rate,
        SOPHIE_E2E_OPENAI_BASE_URL=model_url,
        SOPHIE_E2E_OPENAI_API_KEY=OPENAI_API_KEY,
        **extra,
    )


def _start_servers(env: dict[str, str], work: Path) -> list[ChatServer]:
    """A uvicorn and a daphne process on free ports, started side by side, both healthy.

    A port taken between choosing it and binding it is retried with another.
    """
    started: dict[str, ChatServer] = {}
    launched: list[ChatServer] = []
    try:
        for _attempt in range(3):
            waiting = []
            for kind in ("uvicorn", "daphne"):
                if kind in started:
                    continue
                port = free_port()
                process = ServerProcess(
                    f"{kind} :{port}",
                    server_argv(kind, port),
                    env=env,
                    cwd=ROOT,
                    log_path=work / f"{kind}-{port}.log",
                )
                server = ChatServer(kind, kind, port, process)
                launched.append(server)
                waiting.append(server)
            for server in waiting:
                try:
                    wait_until_healthy(server.process, f"{server.http_url}/chat/health/")
                except ServerDidNotStart as error:
                    if not error.port_taken():
                        raise
                else:
                    started[server.kind] = server
            if len(started) == 2:
                servers = [started["uvicorn"], started["daphne"]]
                _running.extend(server.process for server in servers)
                for server in launched:
                    if server not in servers:
                        server.process.stop()
                return servers
        raise ServerDidNotStart("no free port after 3 tries")
    except BaseException:
        stop_all([server.process for server in launched])
        raise


def _stop_servers(servers: list[ChatServer]) -> None:
    crashed = [s.process for s in servers if s.process.exited()]
    for server in servers:
        if server.process in _running:
            _running.remove(server.process)
    stop_all([server.process for server in servers])
    if crashed:
        pytest.fail("\n\n".join(p.failure("exited while the tests ran") for p in crashed))


def _prepare_database(env: dict[str, str]) -> None:
    """Migrate and load the knowledge base, in one process (each start costs seconds)."""
    script = (
        "import django, sys; django.setup(); "
        "from django.core.management import call_command; "
        "call_command('migrate', interactive=False, verbosity=0); "
        "call_command('populate_knowledge_base', sys.argv[1])"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(KNOWLEDGE_FILE)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, f"migrate and populate:\n{result.stdout}\n{result.stderr}"


@pytest.fixture(scope="session")
def model_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeOpenAI]:
    """The fake OpenAI server process, for every server process of these tests."""
    server = start_fake_openai(tmp_path_factory.mktemp("fake-openai"))
    _running.append(server.process)
    yield server
    _running.remove(server.process)
    server.process.stop()


@pytest.fixture
def fake_openai(model_server: FakeOpenAI) -> FakeOpenAI:
    """The fake OpenAI server, with no queued behaviour and no recorded request."""
    model_server.reset()
    return model_server


@pytest.fixture(scope="module")
def shared_topology(
    tmp_path_factory: pytest.TempPathFactory, model_server: FakeOpenAI
) -> Iterator[Topology]:
    """Two server processes on the machine's Redis and PostgreSQL (REDIS_URL, DATABASE_URL)."""
    prefix = f"sophie-mp-{uuid.uuid4().hex[:12]}"
    redis_parts = urlsplit(os.environ["REDIS_URL"])
    redis_url = urlunsplit(redis_parts._replace(path=f"/{SHARED_REDIS_DB}"))
    admin_url = os.environ["DATABASE_URL"]
    database = prefix.replace("-", "_")
    database_url = urlunsplit(urlsplit(admin_url)._replace(path=f"/{database}"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{database}"')  # type: ignore[arg-type]
    env = _server_env(
        redis_url=redis_url,
        database_url=database_url,
        prefix=prefix,
        model_url=model_server.url,
        rate=f"{SHARED_RATE}/m",
    )
    servers: list[ChatServer] = []
    try:
        _prepare_database(env)
        servers = _start_servers(env, tmp_path_factory.mktemp("shared-topology"))
        yield Topology(servers, env, database_url, redis_url, prefix)
    finally:
        if servers:
            _stop_servers(servers)
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')  # type: ignore[arg-type]
        client = redis.Redis.from_url(redis_url)
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()


@pytest.fixture(scope="module")
def private_topology(
    tmp_path_factory: pytest.TempPathFactory, model_server: FakeOpenAI
) -> Iterator[Topology]:
    """Two server processes on a private Redis, a private answer-cache Redis and a
    private PostgreSQL, which tests may stop and restart (see :func:`services_up`)."""
    missing = missing_binaries()
    if missing:
        if IN_CI:
            pytest.fail(f"CI=true and the failure tests need private services: {missing}")
        pytest.skip(f"needs private Redis and PostgreSQL servers: {missing}")
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
        env = _server_env(
            redis_url=main_redis.url(0),
            database_url=database_url,
            prefix=prefix,
            model_url=model_server.url,
            rate="1000/m",
            REDIS_CACHE_URL=answers_redis.url(0),
        )
        _prepare_database(env)
        # A real database error, on demand: storing a message marked DB_FAILURE_MARK fails.
        postgres.execute(
            "CREATE FUNCTION refuse_message() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'refused by the test trigger'; END $$; "
            "CREATE TRIGGER refuse_marked_messages BEFORE INSERT ON sophie_chat_chatmessage "
            f"FOR EACH ROW WHEN (strpos(NEW.content, '{DB_FAILURE_MARK}') > 0) "
            "EXECUTE FUNCTION refuse_message()",
            database="sophie",
        )
        servers = _start_servers(env, work)
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
            _stop_servers(servers)
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


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.failed:
        for process in list(_running):
            report.sections.append((f"output of {process.name}", process.tail()))
    return report


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
        ws = await connect(
            server.ws_url,
            origin=server.http_url,
            proxy=None,
            open_timeout=10,
            additional_headers={"X-Forwarded-For": visitor_ip},
        )
        client = ChatClient(ws)
        opened.append(client)
        return client, await client.receive()

    yield _open
    for client in opened:
        with contextlib.suppress(Exception):
            await client.close()


def frame_types(frames: list[dict[str, Any]]) -> list[str]:
    return [frame["type"] for frame in frames]


def dumps(frames: list[dict[str, Any]]) -> str:
    return json.dumps(frames, indent=1, ensure_ascii=False)
