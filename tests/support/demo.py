"""The demo site (example_project) served for real: processes, databases.

The demo runs exactly as ``make demo`` runs it, ``manage.py runserver``
from daphne (an ASGI server, WebSockets included), in its own process on
127.0.0.1 and a free port, on a copy of a SQLite file migrated once per test
session (demo accounts included) and loaded with
``knowledge/home_services.json``. Settings are the demo's own, through
``tests/browser/settings.py``. Used by the browser tests' fixtures, by
``tests/test_example_project.py`` and by the screenshot scripts.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.network import free_port, http
from tests.support.openai_server import API_KEY
from tests.support.processes import (
    ROOT,
    ServerDidNotStart,
    ServerProcess,
    project_env,
    run_command,
)

DEMO = ROOT / "example_project"
KNOWLEDGE = DEMO / "knowledge" / "home_services.json"
#: Generous enough that no test meets the limit unless it asks to.
DEFAULT_RATE = "1000/m"


def demo_env(
    database: Path,
    *,
    rate: str = DEFAULT_RATE,
    max_connections_per_client: int = 20,
    model_url: str | None = None,
    limiter_redis_url: str | None = None,
    confirm_timeout: float | None = None,
) -> dict[str, str]:
    """The environment of a demo process: its database, its limits, its model."""
    env = project_env(
        DJANGO_SETTINGS_MODULE="tests.browser.settings",
        SOPHIE_BROWSER_DATABASE=str(database),
        SOPHIE_BROWSER_RATE=rate,
        SOPHIE_BROWSER_MAX_CONNECTIONS_PER_CLIENT=str(max_connections_per_client),
    )
    # Embedded defaults, as `make demo` runs: no Redis even where the tests have one.
    env.pop("REDIS_URL", None)
    if limiter_redis_url:
        env["SOPHIE_BROWSER_LIMITER_REDIS_URL"] = limiter_redis_url
    if confirm_timeout:
        env["SOPHIE_BROWSER_CONFIRM_TIMEOUT"] = str(confirm_timeout)
    if model_url:
        # The demo's own switch: OPENAI_API_KEY selects the OpenAI backend.
        env["OPENAI_API_KEY"] = API_KEY
        env["OPENAI_BASE_URL"] = model_url
    return env


def manage(env: Mapping[str, str], *args: str) -> str:
    """``manage.py ARGS`` in the demo; its output, or an AssertionError with everything."""
    return run_command([sys.executable, "manage.py", *args], cwd=DEMO, env=env)


def make_template_database(directory: Path) -> Path:
    """A migrated demo database with the knowledge loaded, as ``make demo`` leaves it."""
    database = directory / "template.sqlite3"
    env = demo_env(database)
    manage(env, "migrate", "--noinput", "-v", "0")
    manage(env, "populate_knowledge_base", str(KNOWLEDGE))
    return database


@dataclass
class DemoServer:
    """One demo process, restartable on the same port and database."""

    name: str
    database: Path
    env: dict[str, str]
    log_dir: Path
    port: int = 0
    process: ServerProcess | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> DemoServer:
        """Start (or start again, on the same port); returns once it answers."""
        for _attempt in range(3):
            if not self.port:
                self.port = free_port()
            self.process = ServerProcess(
                f"demo ({self.name})",
                [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{self.port}"],
                env=self.env,
                cwd=DEMO,
                log_path=self.log_dir / f"{self.name}-{self.port}-{os.urandom(3).hex()}.log",
            )
            try:
                self.process.wait_until_healthy(f"{self.url}/chat/health/")
            except ServerDidNotStart as error:
                self.process.stop()
                if not error.port_taken():
                    raise
                self.port = 0
            else:
                return self
        raise ServerDidNotStart(f"no free port for the demo ({self.name})")

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()

    def wait_until_idle(self, timeout: float = 10) -> None:
        """Wait until the server has let go of every chat connection (of earlier tests)."""
        deadline = time.monotonic() + timeout
        while http("GET", f"{self.url}/chat/health/")[1]["connections"]:
            assert time.monotonic() < deadline, "chat connections still open"
            time.sleep(0.05)

    def query(self, sql: str, *params: Any) -> list[tuple]:
        """Rows of a read-only query on this server's database."""
        with sqlite3.connect(f"file:{self.database}?mode=ro", uri=True, timeout=5) as db:
            return db.execute(sql, params).fetchall()

    def session_of(self, message_id: str) -> str:
        """The conversation a stored message (its ``data-id`` in the widget) belongs to."""
        ((session_id,),) = self.query(
            "SELECT session_id FROM sophie_chat_chatmessage WHERE id = ?",
            message_id.replace("-", ""),
        )
        return session_id


def demo_server(
    name: str,
    template: Path,
    work: Path,
    **limits: Any,
) -> DemoServer:
    """A started demo server on its own copy of ``template`` (``limits``: see demo_env)."""
    database = work / f"{name}.sqlite3"
    shutil.copyfile(template, database)
    server = DemoServer(name, database, demo_env(database, **limits), work)
    return server.start()
