"""Start the fake model and the servers, run the scenarios side by side, keep the numbers.

Every configuration (Sophie as the quickstart, the deployment page and the
benchmark's tuned settings configure her, the bare consumer, the naive
consumer: :mod:`benchmarks.configurations`) runs in its own uvicorn process
with the same flags; the load generator and the fake model are processes of
their own. A scenario runs in rounds; each round runs every configuration
once, in a rotated order, so that whatever else the machine does falls on
all of them alike.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from tests.support.network import free_port, http_json
from tests.support.openai_server import FakeOpenAIProcess, start_fake_openai
from tests.support.processes import (
    ROOT,
    ServerProcess,
    child_env,
    prepare_database,
    project_env,
)

from benchmarks.configurations import CONFIGURATIONS, make_quickstart_site
from benchmarks.serve import uvicorn_flags

KNOWLEDGE_FILE = ROOT / "example_project" / "knowledge" / "home_services.json"
ROUTES = {"sophie": "ws/chat/", "bare": "ws/bare/", "naive": "ws/naive/"}
#: Sophie's configurations and the baselines, side by side in the load scenarios.
LOAD_CONFIGS = ("quickstart", "deployment", "tuned", "bare", "naive")
CHAT_CONFIGS = ("quickstart", "deployment", "tuned", "bare", "bare-redis", "naive")
READY_TIMEOUT = 60.0
# The answer's words: the fake model answers ``tokens`` of them, one delta each.
ANSWER_WORDS = (
    "Sure", "a", "standard", "cleaning", "of", "a", "two", "bedroom", "flat", "takes",
    "about", "three", "hours", "and", "starts", "at", "R$", "150", "per", "visit",
)


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# Scenarios --------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    """One measurement: a model, a load, the configurations it compares."""

    name: str
    title: str
    model: Mapping[str, float]
    sessions: int
    duration: float = 0.0
    messages: int = 0
    rate: float = 0.0
    rounds: int = 3
    configs: tuple[str, ...] = LOAD_CONFIGS
    kind: str = "load"  # "load", or "idle": connect and hold

    def loadgen_args(self) -> list[str]:
        args = ["--sessions", str(self.sessions)]
        if self.kind == "idle":
            return [*args, "--hold"]
        if self.duration:
            args += ["--duration", str(self.duration)]
        if self.messages:
            args += ["--messages", str(self.messages)]
        if self.rate:
            args += ["--rate", str(self.rate)]
        return args


INSTANT = {"ttft_ms": 0, "token_ms": 0, "tokens": 20}
REALISTIC = {"ttft_ms": 200, "token_ms": 10, "tokens": 20}


def full_scenarios(rounds: int = 3) -> list[Scenario]:
    return [
        Scenario(
            "throughput",
            "Model answering instantly, 20 deltas an answer; 50 sessions, closed loop",
            INSTANT,
            sessions=50,
            duration=10,
            rounds=rounds,
        ),
        Scenario(
            "visits",
            "Model answering instantly; 100 sessions of 5 messages each, closed loop",
            INSTANT,
            sessions=100,
            messages=5,
            rounds=rounds,
        ),
        Scenario(
            "chat",
            "Realistic model (200 ms to first token, 10 ms a token, 20 tokens); "
            "1,000 sessions chatting, 12.5 messages/s offered",
            REALISTIC,
            sessions=1000,
            duration=80,
            rate=12.5,
            rounds=max(2, rounds - 1),
            # The floor on channels-redis too: the deployment configuration's.
            configs=CHAT_CONFIGS,
        ),
        Scenario(
            "idle",
            "10,000 idle sessions (connected, conversation started) held by one process",
            REALISTIC,
            sessions=10_000,
            rounds=1,
            configs=("tuned", "bare"),
            kind="idle",
        ),
    ]


def quick_scenarios() -> list[Scenario]:
    """The CI smoke run: every path of the full run, with tiny numbers."""
    return [
        Scenario("throughput", "smoke: instant model", INSTANT, sessions=3, duration=1, rounds=1),
        Scenario("visits", "smoke: 2 messages each", INSTANT, sessions=3, messages=2, rounds=1),
        Scenario(
            "chat",
            "smoke: realistic model",
            {"ttft_ms": 20, "token_ms": 2, "tokens": 20},
            sessions=10,
            duration=1,
            rate=10,
            rounds=1,
            configs=CHAT_CONFIGS,
        ),
        Scenario(
            "idle",
            "smoke: idle sessions",
            INSTANT,
            sessions=50,
            rounds=1,
            configs=("tuned", "bare"),
            kind="idle",
        ),
    ]


def with_configs(scenarios: list[Scenario], names: list[str]) -> list[Scenario]:
    """``scenarios`` with only the configurations ``names`` (those left with none dropped)."""
    kept = [replace(s, configs=tuple(c for c in s.configs if c in names)) for s in scenarios]
    return [s for s in kept if s.configs]


# Processes --------------------------------------------------------------------------


def rss_kib(pid: int) -> int:
    """Resident memory of a process, in KiB."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used, in seconds."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# The database -----------------------------------------------------------------------


def database_url(kind: str, name: str, workdir: Path) -> str:
    """Create an empty benchmark database; its URL for ``benchmarks.settings``."""
    if kind == "sqlite":
        path = workdir / f"{name}.sqlite3"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return f"sqlite:///{path}"
    import psycopg

    server = os.environ.get("BENCH_POSTGRES_URL") or os.environ.get("DATABASE_URL", "")
    if not server.startswith(("postgres://", "postgresql://")):
        server = "postgres://postgres@127.0.0.1:5432/postgres"
    parts = urlsplit(server)
    admin = urlunsplit((parts.scheme, parts.netloc, "/postgres", "", ""))
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", "", ""))


def redis_url() -> str:
    """The Redis database of the deployment configuration (keys of a run are prefixed)."""
    url = os.environ.get("BENCH_REDIS_URL") or os.environ.get("REDIS_URL", "")
    return url if url.startswith(("redis://", "rediss://")) else "redis://127.0.0.1:6379/0"


def database_version(url: str, how: str = "WAL, synchronous=NORMAL") -> str:
    if url.startswith("sqlite"):
        import sqlite3

        return f"SQLite {sqlite3.sqlite_version} ({how})"
    import psycopg

    with psycopg.connect(url) as connection:
        row = connection.execute("SHOW server_version").fetchone()
    return f"PostgreSQL {row[0] if row else '?'}"


# The bench ----------------------------------------------------------------------------


@dataclass
class Bench:
    """Everything one run started; :meth:`close` stops it all."""

    workdir: Path
    #: The tuned configuration's database ("postgres" or "sqlite"); the deployment
    #: configuration's is always PostgreSQL, the quickstart's the site's SQLite file.
    database: str = "postgres"
    database_name: str = "bench_sophie"
    processes: list[ServerProcess] = field(default_factory=list)
    model: FakeOpenAIProcess | None = None
    db_url: str = ""
    #: Warm servers up before measuring (off for the smoke run, which measures nothing).
    warm: bool = True
    #: The documented configurations': the ``settings.py`` of the site the quickstart's
    #: steps made, the deployment's PostgreSQL database and Redis, the run's key prefix.
    site_settings: Path | None = None
    deployment_db_url: str = ""
    redis_url: str = ""
    redis_prefix: str = ""
    prepared: set[str] = field(default_factory=set)
    #: Where py-spy's profiles of each server under load go (``--profile``), if anywhere.
    profile_dir: Path | None = None

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.db_url = database_url(self.database, self.database_name, self.workdir)
        # The tests' fake OpenAI server, keeping no requests (a soak sends thousands).
        self.model = start_fake_openai(self.workdir, reply=answer(20), api_key=None, record=False)
        self.processes.append(self.model.process)
        self.prepare("tuned")

    def prepare(self, profile: str) -> None:
        """Make the database of a configuration's settings, once: migrated, the demo's
        knowledge loaded (by one process: each start of Django costs seconds)."""
        if profile in self.prepared:
            return
        if profile in ("quickstart", "deployment") and self.site_settings is None:
            site = self.workdir / "quickstart-site"
            shutil.rmtree(site, ignore_errors=True)
            self.site_settings = make_quickstart_site(site)
        if profile == "deployment":
            self.deployment_db_url = database_url(
                "postgres", f"{self.database_name}_deployment", self.workdir
            )
            self.redis_url = redis_url()
            self.redis_prefix = f"sophie-bench-{secrets.token_hex(4)}"
            import redis

            redis.Redis.from_url(self.redis_url, socket_connect_timeout=2).ping()
        prepare_database(self.django_env(profile), KNOWLEDGE_FILE)
        self.prepared.add(profile)

    def describe_database(self, profile: str) -> str:
        """The database a configuration's settings use, described."""
        if profile == "quickstart":
            return database_version("sqlite:", "startproject's file, the quickstart's WAL mode")
        if profile == "deployment":
            return database_version(self.deployment_db_url) + " (the page's pool)"
        return database_version(self.db_url)

    @property
    def model_url(self) -> str:
        assert self.model is not None, "the bench is not started"
        return self.model.url

    def django_env(self, profile: str = "tuned") -> dict[str, str]:
        env = project_env(
            DJANGO_SETTINGS_MODULE="benchmarks.settings",
            BENCH_SETTINGS=profile,
            BENCH_DATABASE_URL=self.db_url,
            BENCH_MODEL_URL=self.model_url,
        )
        if profile != "tuned":
            # The quickstart's settings read the key, the SDK the address.
            env.update(
                BENCH_SITE_SETTINGS=str(self.site_settings),
                OPENAI_API_KEY="sk-bench",
                OPENAI_BASE_URL=self.model_url,
            )
        if profile == "deployment":
            # What the deployment page's block reads; its answers go to the same Redis.
            env.pop("REDIS_CACHE_URL", None)
            env.update(
                REDIS_URL=self.redis_url,
                DATABASE_URL=self.deployment_db_url,
                BENCH_REDIS_PREFIX=self.redis_prefix,
            )
        return env

    def set_model(self, config: Mapping[str, float]) -> None:
        """Make the fake model answer as ``config`` says (see :data:`INSTANT`)."""
        assert self.model is not None, "the bench is not started"
        self.model.set_default(
            text=answer(int(config["tokens"])),
            ttft=config["ttft_ms"] / 1000,
            token_delay=config["token_ms"] / 1000,
        )

    def start_server(self, config: str, tag: str = "") -> Server:
        return self.start_servers([config], tag)[config]

    def start_servers(self, configs: list[str], tag: str = "") -> dict[str, Server]:
        """One server per configuration, started side by side; returned once all answer."""
        servers = {}
        for name in configs:
            config = CONFIGURATIONS[name]
            self.prepare(config.settings)
            port = free_port()
            process = ServerProcess(
                f"server ({tag}{name})",
                [sys.executable, "-m", "benchmarks.serve", "--port", str(port)],
                env=self.django_env(config.settings),
                log_path=self.workdir / f"server-{tag}{name}-{port}.log",
            )
            self.processes.append(process)
            servers[name] = Server(name, port, process)
        for server in servers.values():
            server.process.wait_until(server.health, READY_TIMEOUT)
        return servers

    def stop(self, process: ServerProcess) -> None:
        process.stop()
        if process in self.processes:
            self.processes.remove(process)

    def close(self) -> None:
        for process in reversed(self.processes):
            process.stop()
        self.processes.clear()


def answer(tokens: int) -> str:
    """The fake model's answer of ``tokens`` words."""
    return " ".join(ANSWER_WORDS[i % len(ANSWER_WORDS)] for i in range(tokens))


@dataclass
class Server:
    #: The configuration it serves (:data:`benchmarks.configurations.CONFIGURATIONS`).
    name: str
    port: int
    process: ServerProcess

    def health(self) -> dict[str, Any]:
        return http_json("GET", f"http://127.0.0.1:{self.port}/chat/health/")

    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/{ROUTES[CONFIGURATIONS[self.name].consumer]}"

    def wait_idle(self, timeout: float = 60) -> None:
        """Wait until Sophie's consumers of earlier segments have all closed."""
        deadline = time.monotonic() + timeout
        while self.health()["connections"] and time.monotonic() < deadline:
            time.sleep(0.2)


def run_loadgen(
    url: str,
    args: list[str],
    server: Server,
    on_ready: Callable[[], Any] | None = None,
) -> dict[str, Any]:
    """One load generator process against ``url``; its result, with the server's CPU use."""
    argv = [sys.executable, "-m", "benchmarks.loadgen", "--url", url, *args]
    cpu_before, wall_before = cpu_seconds(server.process.pid), time.monotonic()
    popen = subprocess.Popen(
        argv,
        cwd=ROOT,
        env=child_env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    ready: Any = None
    assert popen.stdout is not None
    assert popen.stdin is not None
    result_line = ""
    try:
        for line in popen.stdout:
            if line.startswith("READY"):
                ready = on_ready() if on_ready else None
                popen.stdin.write("\n")
                popen.stdin.flush()
            elif line.startswith("RESULT "):
                result_line = line
        stderr = popen.stderr.read() if popen.stderr else ""
        popen.wait()
    finally:
        if popen.poll() is None:
            popen.kill()
            popen.wait()
    if not result_line:
        raise RuntimeError(f"load generator failed ({popen.returncode}):\n{stderr[-4000:]}")
    try:
        result = json.loads(result_line.removeprefix("RESULT "))
    except ValueError as exc:
        raise RuntimeError(
            f"load generator wrote a malformed result ({exc}; {len(result_line)} characters)"
        ) from exc
    wall = time.monotonic() - wall_before
    result["server_cpu_s"] = round(cpu_seconds(server.process.pid) - cpu_before, 3)
    result["server_wall_s"] = round(wall, 3)
    if ready is not None:
        result["held"] = ready
    return result


def machine() -> dict[str, Any]:
    model = "unknown"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory = 0
    with contextlib.suppress(OSError), open("/proc/meminfo") as meminfo:
        memory = int(meminfo.readline().split()[1]) // 1024
    versions = {}
    for package in (
        "django",
        "channels",
        "uvicorn",
        "uvloop",
        "httptools",
        "websockets",
        "openai",
        "aiohttp",
        "psycopg",
        "sophie-chat",
    ):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[package] = metadata.version(package)
    import sophie_chat

    versions.setdefault("sophie-chat", sophie_chat.__version__)
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "memory_mib": memory,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "versions": versions,
    }


def git_revision() -> str:
    try:
        revision = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "src", "benchmarks"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return revision + ("+changes" if dirty else "")


def warm_up(server: Server, sessions: int = 5) -> None:
    """A few conversations, unmeasured: imports, connections and caches are made first."""
    run_loadgen(server.url(), ["--sessions", str(sessions), "--messages", "2"], server)
    server.wait_idle()


def rotated(configs: tuple[str, ...], round_number: int) -> list[str]:
    shift = round_number % len(configs)
    return list(configs[shift:] + configs[:shift])


def run_load_scenario(bench: Bench, servers: dict[str, Server], scenario: Scenario) -> list[dict]:
    bench.set_model(scenario.model)
    segments = []
    for round_number in range(scenario.rounds):
        for config in rotated(scenario.configs, round_number):
            server = servers[config]
            server.wait_idle()
            log(f"{scenario.name} round {round_number + 1}/{scenario.rounds}: {config}")
            result = run_loadgen(server.url(), scenario.loadgen_args(), server)
            result.update(config=config, round=round_number, rss_kib=rss_kib(server.process.pid))
            log(
                f"  {result['replies']} replies, {result['replies_per_s']}/s, "
                f"errors {result['errors'] or 0}, server CPU "
                f"{result['server_cpu_s'] / max(result['server_wall_s'], 1e-9):.0%}"
            )
            segments.append(result)
    return segments


def profile_scenario(bench: Bench, servers: dict[str, Server], scenario: Scenario) -> dict:
    """With ``--profile``: one more round per configuration, unmeasured, under py-spy.

    Returns where each configuration's CPU time went, by part (:data:`PARTS`),
    as shares of the samples; the measured rounds run without the sampler.
    """
    if bench.profile_dir is None or scenario.name not in PROFILED:
        return {}
    bench.set_model(scenario.model)
    found = {}
    for config in scenario.configs:
        server = servers[config]
        server.wait_idle()
        log(f"{scenario.name} profiled: {config}")
        name = f"{scenario.name}-{config}"
        with profiled(bench, server, name):
            run_loadgen(server.url(), scenario.loadgen_args(), server)
        raw = bench.profile_dir / f"{name}.txt"
        if raw.exists():
            found[config] = profile_parts(raw)
    return found


#: The scenarios profiled (the instant model's: CPU per turn is what they compare).
PROFILED = ("throughput", "visits")

#: The parts of a server's CPU time, by the innermost frame that names one.
PARTS = (
    (
        "database",
        (
            "sophie_chat/db.py",
            "sophie_chat/store.py",
            "sophie_chat/statements.py",
            "channels/db.py",
            "django/db/",
            "psycopg",
        ),
    ),
    (
        "Redis",
        (
            "channels_redis",
            "redis/",
            "limits/",
            "django_redis",
            "sophie_chat/locks.py",
            "sophie_chat/async_cache.py",
            "sophie_chat/groups.py",
        ),
    ),
    ("model request and stream", ("openai/", "httpx", "aiohttp", "httpcore", "sophie_chat/llm/")),
    ("knowledge search", ("sophie_chat/knowledge/",)),
    (
        "frames to the visitor",
        (
            "uvicorn/protocols",
            "websockets/",
            "sophie_chat/protocol.py",
            "channels/generic/websocket.py",
        ),
    ),
)
OTHER = "other (engine, Channels, asyncio)"


def samples(raw: Path) -> Iterator[tuple[list[str], int]]:
    """py-spy's raw profile: each stack (outermost frame first) and its samples."""
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if count.isdigit():
            yield stack.split(";"), int(count)


def part_of(frames: list[str]) -> str:
    """The :data:`PARTS` name of a stack's innermost frame that names one, else OTHER."""
    for frame in reversed(frames):
        for name, marks in PARTS:
            if any(mark in frame for mark in marks):
                return name
    return OTHER


def profile_parts(raw: Path) -> dict[str, Any]:
    """Shares of py-spy's samples (holding the GIL) by :data:`PARTS`."""
    counts: Counter[str] = Counter()
    for frames, count in samples(raw):
        counts[part_of(frames)] += count
    total = sum(counts.values())
    return {
        "samples": total,
        "shares": {part: round(n / total, 4) for part, n in counts.most_common()} if total else {},
    }


@contextlib.contextmanager
def profiled(bench: Bench, server: Server, name: str) -> Iterator[None]:
    """py-spy samples ``server`` meanwhile, when the run was asked to ``--profile``.

    Its collapsed stacks go to ``<profile_dir>/<name>.txt`` (for flame graph tools)
    and a summary of the hottest functions to ``<name>.top.txt``.
    """
    if bench.profile_dir is None:
        yield
        return
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    bench.profile_dir.mkdir(parents=True, exist_ok=True)
    raw = bench.profile_dir / f"{name}.txt"
    # --gil: only samples holding the GIL, i.e. the server's CPU time, not its waits.
    spy = subprocess.Popen(
        [
            *(py_spy, "record", "--pid", str(server.process.pid), "--rate", "250", "--gil"),
            *("--format", "raw", "--output", str(raw), "--nonblocking"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield
    finally:
        spy.send_signal(signal.SIGINT)
        try:
            spy.wait(timeout=30)
        except subprocess.TimeoutExpired:
            spy.kill()
        if raw.exists():
            (bench.profile_dir / f"{name}.top.txt").write_text(profile_summary(raw))
            log(f"  profile in {raw}")
        else:
            log(f"  py-spy wrote no profile: {(spy.stderr.read() if spy.stderr else '')[-500:]}")


def profile_summary(raw: Path, top: int = 60) -> str:
    """The functions holding the most samples, inclusive and by themselves."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    for frames, count in samples(raw):
        for frame in set(frames):
            inclusive[frame] += count
        own[frames[-1]] += count
    total = sum(own.values()) or 1
    lines = [f"{total} samples holding the GIL", "", "inclusive:"]
    lines += [f"{n / total:6.1%}  {frame}" for frame, n in inclusive.most_common(top)]
    lines += ["", "own:"]
    lines += [f"{n / total:6.1%}  {frame}" for frame, n in own.most_common(top)]
    return "\n".join(lines) + "\n"


def run_idle_scenario(bench: Bench, scenario: Scenario) -> list[dict]:
    """Per config: a fresh server, warmed up, then ``sessions`` idle sessions held."""
    bench.set_model(scenario.model)
    segments = []
    fresh = bench.start_servers(list(scenario.configs), tag="idle-")
    for config in scenario.configs:
        server = fresh[config]
        try:
            if bench.warm:
                warm_up(server)
                time.sleep(1)
            before = rss_kib(server.process.pid)
            log(f"idle: {config}, {scenario.sessions} sessions, RSS before {before} KiB")

            def held(server: Server = server) -> dict[str, Any]:
                time.sleep(3)  # let the last handshakes and session rows settle
                return {"rss_kib": rss_kib(server.process.pid)}

            result = run_loadgen(server.url(), scenario.loadgen_args(), server, held)
            after = result.get("held", {}).get("rss_kib", 0)
            connected = result["connected"]
            result.update(
                config=config,
                round=0,
                rss_before_kib=before,
                rss_after_kib=after,
                kib_per_session=round((after - before) / connected, 2) if connected else None,
            )
            log(f"  {connected} held, RSS after {after} KiB: {result['kib_per_session']} KiB each")
            segments.append(result)
        finally:
            bench.stop(server.process)
    return segments


def describe(bench: Bench, name: str, server: Server | None) -> dict[str, Any]:
    """What a configuration is, for the table: which settings, database, model transport."""
    config = CONFIGURATIONS[name]
    bench.prepare(config.settings)
    described = {
        "label": config.label,
        "description": config.description,
        "settings": config.settings,
        "consumer": config.consumer,
        # The baselines store nothing.
        "database": "-",
    }
    if config.consumer == "sophie":
        described["database"] = bench.describe_database(config.settings)
        if server is not None:
            # As the running server reports it: aiohttp only when it is installed.
            described["http_client"] = server.health().get("llm", {}).get("http_client")
    return described


def run(scenarios: list[Scenario], *, bench: Bench, command: str) -> dict[str, Any]:
    """Run ``scenarios`` on a started ``bench``; the results (see :mod:`benchmarks.report`)."""
    started = datetime.now(UTC)
    load_before = os.getloadavg()
    results: dict[str, Any] = {
        "command": command,
        "started": started.isoformat(timespec="seconds"),
        "revision": git_revision(),
        "machine": machine(),
        "load_before": [round(v, 2) for v in load_before],
        "server_command": "python -m benchmarks.serve  # = uvicorn "
        + " ".join(uvicorn_flags(0)).replace("--port 0", "--port PORT"),
        "scenarios": [],
    }
    servers: dict[str, Server] = {}
    try:
        results["database"] = database_version(bench.db_url)
        used = list(dict.fromkeys(c for s in scenarios for c in s.configs))
        load_scenarios = [s for s in scenarios if s.kind == "load"]
        if load_scenarios:
            servers = bench.start_servers(
                list(dict.fromkeys(c for s in load_scenarios for c in s.configs))
            )
            for server in servers.values():
                if bench.warm:
                    warm_up(server)
        results["configurations"] = {
            name: describe(bench, name, servers.get(name)) for name in used
        }
        for scenario in scenarios:
            if scenario.kind == "idle":
                segments = run_idle_scenario(bench, scenario)
            else:
                segments = run_load_scenario(bench, servers, scenario)
            results["scenarios"].append({**asdict(scenario), "segments": segments})
            if scenario.kind != "idle":
                profiles = profile_scenario(bench, servers, scenario)
                if profiles:
                    results["scenarios"][-1]["profiles"] = profiles
        for server in servers.values():
            results.setdefault("server_rss_end_kib", {})[server.name] = rss_kib(server.process.pid)
    finally:
        for server in servers.values():
            bench.stop(server.process)
    results["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
    results["load_after"] = [round(v, 2) for v in os.getloadavg()]
    return results


def soak(
    *,
    bench: Bench,
    command: str,
    seconds: float = 600,
    sessions: int = 1000,
    rate: float = 12.5,
    wave_seconds: float = 60,
    sample_every: float = 5,
) -> dict[str, Any]:
    """Steady load on one Sophie server for ``seconds``, its RSS sampled all along.

    The load comes in waves of ``wave_seconds``: each wave connects
    ``sessions`` new sessions (conversations start and end, as on a site)
    and sends ``rate`` messages a second to them.
    """
    started = datetime.now(UTC)
    result: dict[str, Any] = {
        "command": command,
        "started": started.isoformat(timespec="seconds"),
        "revision": git_revision(),
        "machine": machine(),
        "load_before": [round(v, 2) for v in os.getloadavg()],
        "seconds": seconds,
        "sessions": sessions,
        "rate": rate,
        "wave_seconds": wave_seconds,
        "model": REALISTIC,
        "samples": [],
        "waves": [],
    }
    server: Server | None = None
    try:
        result["database"] = database_version(bench.db_url)
        bench.set_model(REALISTIC)
        server = bench.start_server("tuned", tag="soak-")
        if bench.warm:
            warm_up(server)
        begin = time.monotonic()
        stop = threading.Event()

        def sample() -> None:
            while not stop.is_set():
                result["samples"].append(
                    [round(time.monotonic() - begin, 1), rss_kib(server.process.pid)]
                )
                stop.wait(sample_every)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            while time.monotonic() - begin < seconds:
                left = seconds - (time.monotonic() - begin)
                duration = max(1.0, min(wave_seconds, left - 2))
                wave = run_loadgen(
                    server.url(),
                    [
                        "--sessions",
                        str(sessions),
                        "--rate",
                        str(rate),
                        "--duration",
                        str(duration),
                    ],
                    server,
                )
                for key in ("connect_ms", "ttfd_ms", "ttend_ms"):
                    wave[key] = summary(wave[key])
                wave["at_s"] = round(time.monotonic() - begin, 1)
                result["waves"].append(wave)
                log(
                    f"soak {wave['at_s']:.0f}/{seconds:.0f} s: {wave['replies']} replies, "
                    f"errors {wave['errors'] or 0}, RSS {result['samples'][-1][1]} KiB"
                )
        finally:
            stop.set()
            sampler.join()
    finally:
        if server is not None:
            bench.stop(server.process)
    result["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
    result["load_after"] = [round(v, 2) for v in os.getloadavg()]
    return result


def percentile(values: list[float], q: float) -> float | None:
    """The ``q`` quantile (0..1) by nearest rank; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, int(q * len(ordered) + 0.999999) - 1))
    return ordered[rank]


def summary(values: list[float]) -> dict[str, Any]:
    return {
        "count": len(values),
        "p50": percentile(values, 0.5),
        "p99": percentile(values, 0.99),
        "max": max(values) if values else None,
    }
