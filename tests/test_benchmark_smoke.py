"""The benchmark's smoke run: ``python -m benchmarks`` with tiny numbers, so it cannot rot.

It starts real processes (the fake model, one uvicorn per configuration,
the load generator) and takes about a minute, so it is marked ``benchmark``
and runs in one tox environment only (``py312-django61-postgres``); the
others deselect it. The deployment configuration needs PostgreSQL and Redis
(``REDIS_URL``) whatever database the tuned one runs on.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.processes import ROOT, project_env

pytestmark = [
    pytest.mark.server,
    pytest.mark.benchmark,
    pytest.mark.postgres,
    pytest.mark.redis,
    # The module's first test waits for the whole quick run.
    pytest.mark.timeout(400),
]

SOPHIE = ["deployment", "quickstart", "tuned"]


def bench(out: Path, *args: str) -> dict[str, Any]:
    """Run ``python -m benchmarks ARGS --quick`` into ``out``; the results document."""
    database = (
        "postgres"
        if os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://"))
        else "sqlite"
    )
    env = project_env()
    if database == "postgres":
        # The server the benchmark makes its database on.
        env["DATABASE_URL"] = os.environ["DATABASE_URL"]
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks",
            *args,
            "--quick",
            "--out",
            str(out),
            "--workdir",
            str(out / "work"),
            "--database",
            database,
            "--database-name",
            # Runs sharing a PostgreSQL server have test databases of their own: this too.
            os.environ.get("SOPHIE_TEST_DB_NAME", "test_sophie_chat") + "_bench",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=360,
        check=False,
    )
    assert result.returncode == 0, f"{result.stdout[-3000:]}\n{result.stderr[-6000:]}"
    return json.loads((out / "results.json").read_text())


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """One quick run of everything (the scenarios, then the soak) for this module's tests."""
    out = tmp_path_factory.mktemp("bench")
    return out, bench(out, "all", "--profile")


def scenario(document: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in document["run"]["scenarios"] if s["name"] == name)


@pytest.mark.parametrize(
    ("name", "configs"),
    [
        ("throughput", ["bare", "naive", *SOPHIE]),
        ("visits", ["bare", "naive", *SOPHIE]),
        # The realistic model also on channels-redis, beside its floor there.
        ("chat", ["bare", "bare-redis", "naive", *SOPHIE]),
    ],
)
def test_every_configuration_answers_without_errors_side_by_side(quick_run, name, configs):
    _out, document = quick_run
    segments = scenario(document, name)["segments"]
    assert sorted(s["config"] for s in segments) == sorted(configs)
    for segment in segments:
        assert segment["replies"] > 0, segment["config"]
        assert segment["errors"] == {}, segment["config"]
        assert segment["connected"] == segment["sessions"]
        assert len(segment["ttfd_ms"]) == segment["replies"]


def test_each_configuration_runs_its_settings(quick_run):
    """What the servers report: the documented configurations' database and transport."""
    _out, document = quick_run
    described = document["run"]["configurations"]
    assert described["quickstart"]["http_client"] == "httpx"
    assert described["quickstart"]["database"].startswith("SQLite")
    assert described["deployment"]["database"].startswith("PostgreSQL")
    assert described["deployment"]["http_client"] == "aiohttp"
    assert described["bare-redis"]["settings"] == "deployment"


def test_idle_sessions_are_held_and_their_memory_measured(quick_run):
    _out, document = quick_run
    for segment in scenario(document, "idle")["segments"]:
        assert segment["connected"] == segment["sessions"] == 50, segment["config"]
        assert segment["rss_after_kib"] > 0
        assert segment["kib_per_session"] is not None


def test_results_are_written_as_a_table_with_the_targets_and_how_they_were_measured(
    quick_run,
):
    out, document = quick_run
    table = (out / "results.md").read_text()
    assert "### Targets" in table
    assert "replies/s >= 0.5 x bare" in table
    assert "replies/s >= 0.8 x naive" in table
    # The table says which configuration is which.
    assert "### Configurations" in table
    for described in document["run"]["configurations"].values():
        assert f"| {described['label']} | {described['description']} |" in table
    assert document["run"]["server_command"] in table
    assert document["run"]["machine"]["cores"]


def test_profiled_rounds_say_where_each_configurations_cpu_time_went(quick_run):
    out, document = quick_run
    for name in ("throughput", "visits"):
        profiles = scenario(document, name)["profiles"]
        assert set(profiles) == {s["config"] for s in scenario(document, name)["segments"]}
        for config, profile in profiles.items():
            assert profile["samples"] > 0, config
            assert abs(sum(profile["shares"].values()) - 1) < 0.01
    assert "profiles" not in scenario(document, "chat")
    assert list((out / "work" / "profiles").glob("visits-deployment.txt"))


def test_soak_samples_the_servers_memory_while_it_answers(quick_run):
    _out, document = quick_run
    soak = document["soak"]
    assert len(soak["samples"]) >= 4
    assert sum(wave["replies"] for wave in soak["waves"]) > 0
    assert all(wave["errors"] == {} for wave in soak["waves"])
