"""The services tests need: whether they are here, and private servers tests may stop.

Tests marked ``redis``, ``postgres`` or ``browser`` need that service
(:func:`service_missing`). On a developer's machine without it they skip
with a message naming what is missing; under ``CI=true`` they never skip: a
missing service fails them (:func:`skip_unless_ci`).

The machine's own Redis and PostgreSQL are shared by other test runs, so the
failure tests never stop them: each starts its own ``redis-server``
(:class:`PrivateRedis`) and its own PostgreSQL cluster
(:class:`PrivatePostgres`, ``initdb`` into a temporary folder) on free ports
on 127.0.0.1, and removes them at the end. PostgreSQL refuses to run as
root; under root its commands run as the ``postgres`` user.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import NoReturn
from urllib.parse import urlparse

import psycopg
import pytest
import redis

from tests.support.network import free_port, port_open

#: Under ``CI=true`` nothing is skipped for a missing service: it fails.
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}

START_TIMEOUT = 30.0


def skip_unless_ci(reason: str) -> NoReturn:
    """Skip the test because ``reason``; fail it instead under ``CI=true``."""
    if IN_CI:
        pytest.fail(f"CI=true and this test cannot run: {reason}")
    pytest.skip(reason)


def _reachable(url: str, default_port: int) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection(
            (parsed.hostname or "127.0.0.1", parsed.port or default_port), timeout=1
        ):
            return True
    except OSError:
        return False


def service_missing(marker: str) -> str | None:
    """Why the service of a test marker (``redis``, ``postgres``, ``browser``) is not here,
    or ``None``."""
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


def redis_server_binary() -> str | None:
    return shutil.which("redis-server")


def postgres_bindir() -> Path | None:
    """The folder of ``initdb`` and ``pg_ctl``: ``SOPHIE_PG_BINDIR``, PATH, or Debian's."""
    candidates = [os.environ.get("SOPHIE_PG_BINDIR", "")]
    if shutil.which("initdb"):
        candidates.append(str(Path(shutil.which("initdb") or "").parent))
    candidates += sorted(
        glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]), reverse=True
    )
    for folder in filter(None, candidates):
        if (Path(folder) / "initdb").exists() and (Path(folder) / "pg_ctl").exists():
            return Path(folder)
    return None


def missing_binaries() -> str | None:
    """Why private services cannot run here, or ``None``."""
    if redis_server_binary() is None:
        return "redis-server is not installed (apt-get install redis-server)"
    if postgres_bindir() is None:
        return "PostgreSQL's initdb and pg_ctl are not installed (apt-get install postgresql)"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "running as root, and runuser is missing to run PostgreSQL as postgres"
    return None


class PrivateRedis:
    """A ``redis-server`` of our own, without persistence."""

    def __init__(self, workdir: Path, name: str = "redis") -> None:
        self.name = name
        self.workdir = workdir
        self.port = free_port()
        self.log_path = workdir / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> None:
        # The same port every time: clients reconnect to where Redis was.
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [
                    redis_server_binary() or "redis-server",
                    "--port", str(self.port),
                    "--bind", "127.0.0.1",
                    "--save", "",
                    "--appendonly", "no",
                    "--dir", str(self.workdir),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        client = redis.Redis(port=self.port, socket_timeout=1)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited:\n{self.log_path.read_text()}")
            with contextlib.suppress(redis.RedisError):
                if client.ping():
                    client.close()
                    return
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} did not answer:\n{self.log_path.read_text()}")
            time.sleep(0.02)

    def stop(self) -> None:
        """Stop it; clients see their connections closed and new ones refused."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)  # a paused server cannot stop
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.process = None
        deadline = time.monotonic() + 5
        while port_open(self.port) and time.monotonic() < deadline:
            time.sleep(0.02)

    def pause(self) -> None:
        """Freeze it (SIGSTOP): connections stay open and nothing answers."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def ensure_running(self) -> None:
        if self.running:
            self.resume()
        else:
            self.start()


class PrivatePostgres:
    """A PostgreSQL cluster of our own, in a temporary folder."""

    def __init__(self) -> None:
        bindir = postgres_bindir()
        assert bindir is not None, missing_binaries()
        self.bindir = bindir
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="sophie-pg-"))
        self.data = self.root / "data"
        self.sockets = self.root / "sockets"
        self.log_path = self.root / "postgres.log"
        self.sockets.mkdir()
        self.as_root = os.geteuid() == 0
        if self.as_root:
            shutil.chown(self.root, "postgres")
            shutil.chown(self.sockets, "postgres")
        self.running = False

    def _run(self, *argv: str) -> None:
        command = [str(self.bindir / argv[0]), *argv[1:]]
        if self.as_root:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(
            command,
            cwd=self.root,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if result.returncode != 0:
            log = self.log_path.read_text() if self.log_path.exists() else ""
            raise RuntimeError(
                f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}\n{log}"
            )

    def init(self) -> None:
        self._run(
            "initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust",
            "-E", "UTF8", "--locale", "C", "--no-sync",
        )

    def _options(self) -> str:
        return (
            f"-p {self.port} -k {self.sockets} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c full_page_writes=off -c synchronous_commit=off"
        )

    def start(self) -> None:
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.log_path), "-o", self._options(),
            "-w", "-t", str(int(START_TIMEOUT)), "start",
        )
        self.running = True

    def stop(self) -> None:
        if self.running:
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
            self.running = False

    def restart(self) -> None:
        """A fast restart: every client connection is closed."""
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.log_path), "-o", self._options(),
            "-m", "fast", "-w", "-t", str(int(START_TIMEOUT)), "restart",
        )
        self.running = True

    def ensure_running(self) -> None:
        if not self.running:
            self.start()

    def url(self, user: str = "postgres", database: str = "postgres") -> str:
        return f"postgres://{user}@127.0.0.1:{self.port}/{database}"

    def execute(self, sql: str, database: str = "postgres") -> None:
        """Run SQL as the superuser."""
        with psycopg.connect(self.url(database=database), autocommit=True) as conn:
            conn.execute(sql)  # type: ignore[arg-type]

    def remove(self) -> None:
        with contextlib.suppress(Exception):
            self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
