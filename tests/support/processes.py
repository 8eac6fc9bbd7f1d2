"""Processes the tests and the benchmark start: servers on 127.0.0.1, stopped for sure.

One launcher for every server process of the project: the chat under
uvicorn and daphne (tests/e2e, tests/production), the demo under daphne
(tests/browser), the fake OpenAI server, and the benchmark's servers and
fake model (``benchmarks/runner.py``). Each process runs in a session of its
own (stopping it stops whatever it started) and writes its output to a file,
which a failing test's report shows (see ``tests/conftest.py``).

Nothing here imports pytest or Django: ``python -m benchmarks`` uses it too.
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from tests.support.network import http

#: The repository's root: the working folder of every child process.
ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
LOG_TAIL_CHARS = 12_000

#: Processes started and not yet stopped, oldest first (for failure reports).
RUNNING: list[ServerProcess] = []


def python_path() -> str:
    """PYTHONPATH for a child process: the project root (for ``tests.*`` and
    ``benchmarks.*``), and ``src/`` when this process imports sophie_chat from
    the source tree rather than from an installed wheel."""
    import sophie_chat

    entries = [str(ROOT)]
    package_parent = Path(sophie_chat.__file__).resolve().parent.parent
    if package_parent == ROOT / "src":
        entries.append(str(package_parent))
    return os.pathsep.join(entries)


def child_env(**overrides: str) -> dict[str, str]:
    """This process's environment without what would steer a child elsewhere
    (the model's, Django's, the tests' and the benchmark's variables, the
    database and PYTHONPATH), plus ``overrides``."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("OPENAI_", "SOPHIE_E2E_", "DJANGO_", "BENCH_"))
        and name not in {"PYTHONPATH", "DATABASE_URL"}
    }
    env["PYTHONUNBUFFERED"] = "1"
    env.update(overrides)
    return env


def project_env(**overrides: str) -> dict[str, str]:
    """:func:`child_env` for a child that imports the project (see :func:`python_path`)."""
    return child_env(PYTHONPATH=python_path(), **overrides)


def raise_file_limit() -> int:
    """Raise this process's soft limit of open files to its hard limit; return it.

    Every connection is a file descriptor: thousands of sessions need more
    than the usual soft limit of 1,024, which servers do not raise themselves.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1_048_576
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def run_command(
    argv: list[str], *, cwd: Path = ROOT, env: Mapping[str, str], timeout: float = 120
) -> str:
    """Run a command to its end; its stdout, or an :class:`AssertionError` with all it said."""
    result = subprocess.run(
        argv,
        cwd=cwd,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        raise AssertionError(
            f"$ {' '.join(argv)}\nexit {result.returncode}\n{result.stdout}\n{result.stderr}"
        )
    return result.stdout


def prepare_database(env: Mapping[str, str], knowledge_file: Path) -> None:
    """Migrate the database of the settings in ``env`` and load ``knowledge_file``,
    in one process (each start of Django costs seconds)."""
    script = (
        "import django, sys; django.setup(); "
        "from django.core.management import call_command; "
        "call_command('migrate', interactive=False, verbosity=0); "
        "call_command('populate_knowledge_base', sys.argv[1])"
    )
    run_command([sys.executable, "-c", script, str(knowledge_file)], env=env, timeout=300)


class ServerDidNotStart(RuntimeError):
    """A process exited, or did not get ready in time; the message has its output."""

    def port_taken(self) -> bool:
        """Whether it failed because its port was taken after it was chosen."""
        return "address already in use" in str(self).lower()


class ServerProcess:
    """A process we started; stdout and stderr go to ``log_path``."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        *,
        env: Mapping[str, str],
        log_path: Path,
        cwd: Path = ROOT,
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
        RUNNING.append(self)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def output(self) -> str:
        return self.log_path.read_text("utf-8", "replace")

    def tail(self) -> str:
        text = self.output()
        return text if len(text) <= LOG_TAIL_CHARS else "...\n" + text[-LOG_TAIL_CHARS:]

    def exited(self) -> bool:
        return self.popen.poll() is not None

    def failure(self, what: str) -> str:
        """A report of what went wrong: the command and the end of its output."""
        return f"{self.name} {what}.\n$ {' '.join(self.argv)}\n--- output ---\n{self.tail()}"

    def send_signal(self, signum: int) -> None:
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signum)

    def stop(self) -> None:
        """Stop the process (SIGTERM, then SIGKILL) and wait for it."""
        stop_all([self])

    def wait_until(self, probe: Callable[[], Any], timeout: float = READY_TIMEOUT) -> Any:
        """``probe()``'s result once it returns without :class:`OSError` or :class:`ValueError`.

        Raises :class:`ServerDidNotStart`, with the output, if the process
        exits first or ``timeout`` passes.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.exited():
                raise ServerDidNotStart(self.failure(f"exited with {self.popen.returncode}"))
            with contextlib.suppress(OSError, ValueError):
                return probe()
            time.sleep(0.05)
        raise ServerDidNotStart(self.failure(f"did not get ready in {timeout} s"))

    def wait_for_line(self, prefix: str, timeout: float = READY_TIMEOUT) -> str:
        """The rest of the first output line starting with ``prefix``, once it is written."""

        def line() -> str:
            for text in self.output().splitlines():
                if text.startswith(prefix):
                    return text.removeprefix(prefix).strip()
            raise ValueError(f"no line starting with {prefix!r} yet")

        return self.wait_until(line, timeout)

    def wait_until_healthy(self, url: str, timeout: float = READY_TIMEOUT) -> None:
        """Wait until ``url`` answers 200 (``chat/health/``, say)."""

        def healthy() -> None:
            status, body = http("GET", url, timeout=2)
            if status != 200:
                raise ValueError(f"{url} answered {status}: {body!r}")

        self.wait_until(healthy, timeout)


def stop_all(processes: list[ServerProcess]) -> None:
    """Stop ``processes`` side by side: SIGTERM to all, SIGKILL to any still there after
    :data:`STOP_TIMEOUT`."""
    for process in processes:
        if process in RUNNING:
            RUNNING.remove(process)
        process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    for process in processes:
        try:
            process.popen.wait(max(deadline - time.monotonic(), 0.01))
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGKILL)
            process.popen.wait(STOP_TIMEOUT)
