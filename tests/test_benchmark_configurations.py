"""The benchmark's documented configurations run the settings the docs print.

``python -m benchmarks`` runs Sophie as the quickstart and as the
deployment page configure her (:mod:`benchmarks.configurations`). These
tests read the pages on their own and check that the servers' settings are
the pages' settings, with only the benchmark's own needs layered on top, and
that those are the ones docs/performance.md lists. The deployment page's
block is read here as the production tests read it
(:mod:`tests.production.recipe`); the benchmark reads it with the
quickstart's reader (the benchmark imports nothing of the tests but
``tests.support``).
"""

from __future__ import annotations

import copy
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from benchmarks import configurations, report, runner
from benchmarks.configurations import (
    CONFIGURATIONS,
    benchmark_settings,
    layers,
    make_quickstart_site,
)

from tests.production import recipe
from tests.support.processes import ROOT, project_env, run_command
from tests.support.quickstart import QUICKSTART, Edit, Quickstart

REDIS = "redis://127.0.0.1:6379/9"
DATABASE = "postgres://bench:secret@127.0.0.1:5432/bench_sophie_deployment"


def named(value: Any) -> str:
    """Settings as JSON, here and in the server's process: a function by its name, a path
    as text (the script below does the same)."""
    return getattr(value, "__qualname__", None) or str(value)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ``settings.py`` of a site made by the quickstart's steps."""
    return make_quickstart_site(tmp_path_factory.mktemp("site"))


@pytest.fixture
def deployment_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the deployment page's block reads: the benchmark's Redis and PostgreSQL."""
    monkeypatch.setenv("REDIS_URL", REDIS)
    monkeypatch.setenv("DATABASE_URL", DATABASE)
    monkeypatch.delenv("REDIS_CACHE_URL", raising=False)


def quickstart_block() -> dict[str, Any]:
    """The quickstart's settings block (section 2), executed on its own."""
    [block] = [
        step
        for step in Quickstart.read(QUICKSTART).setup
        if isinstance(step, Edit) and step.path == "mysite/settings.py" and step.how == "append"
    ]
    namespace: dict[str, Any] = {
        "INSTALLED_APPS": [],
        "TEMPLATES": [{}],
        "BASE_DIR": Path("/site"),
        "DATABASES": {"default": {}},
        "os": os,
    }
    exec(compile(block.text, str(QUICKSTART), "exec"), namespace)
    return namespace


def differences(a: Any, b: Any, path: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    """The paths (keys, dictionary in dictionary) at which ``a`` and ``b`` differ;
    a dictionary that one side lacks counts as empty."""
    if isinstance(a, dict) or isinstance(b, dict):
        a = a if isinstance(a, dict) else {} if a is _MISSING else a
        b = b if isinstance(b, dict) else {} if b is _MISSING else b
    if isinstance(a, dict) and isinstance(b, dict):
        found: set[tuple[str, ...]] = set()
        for key in a.keys() | b.keys():
            found |= differences(a.get(key, _MISSING), b.get(key, _MISSING), (*path, key))
        return found
    return set() if a == b else {path}


_MISSING = object()


def test_quickstart_configuration_runs_the_quickstarts_settings(site):
    ran = benchmark_settings("quickstart", site, redis_prefix="run")
    block = quickstart_block()
    # SQLite as startproject makes it, a file next to manage.py, with the page's WAL
    # mode and kept connections.
    assert ran["DATABASES"] == {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": site.parents[1] / "db.sqlite3",
            "CONN_MAX_AGE": None,
            "OPTIONS": {
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                "transaction_mode": "IMMEDIATE",
            },
        }
    }
    assert ran["CHANNEL_LAYERS"] == block["CHANNEL_LAYERS"]
    assert ran["CHANNEL_LAYERS"]["default"]["BACKEND"] == "channels.layers.InMemoryChannelLayer"
    assert ran["CACHES"] == {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    }
    # The page's SOPHIE_CHAT, with only the layers added; no aiohttp extra on that site.
    changes = layers("quickstart", ran, redis_prefix="run")
    assert differences(ran["SOPHIE_CHAT"], block["SOPHIE_CHAT"]) == {
        layer.path[1:] for layer in changes if layer.path[0] == "SOPHIE_CHAT"
    }
    assert ran["SOPHIE_CHAT"]["LLM"]["OPTIONS"]["http_client"] == "httpx"
    assert {layer.path[0] for layer in changes} == {"SOPHIE_CHAT"}


def test_deployment_configuration_runs_the_pages_block(site, deployment_env):
    ran = benchmark_settings("deployment", site, redis_prefix="run")
    page = recipe.production_settings()
    # The page's pool on the benchmark's database, as printed.
    assert ran["DATABASES"] == page["DATABASES"]
    assert ran["DATABASES"]["default"]["NAME"] == "bench_sophie_deployment"
    assert ran["DATABASES"]["default"]["OPTIONS"]["pool"]["max_size"] == 8
    # channels-redis, django-redis and the Redis limiter, on the run's own keys.
    assert differences(ran["CHANNEL_LAYERS"], page["CHANNEL_LAYERS"]) == {
        ("default", "CONFIG", "prefix")
    }
    assert ran["CHANNEL_LAYERS"]["default"]["CONFIG"]["hosts"][0]["address"] == REDIS
    assert differences(ran["CACHES"], page["CACHES"]) == {
        (alias, "KEY_PREFIX") for alias in page["CACHES"]
    }
    assert ran["CACHES"]["sophie_answers"]["KEY_PREFIX"] == "run:answers"
    limiter, page_limiter = ran["SOPHIE_CHAT"]["RATE_LIMIT"], page["SOPHIE_CHAT"]["RATE_LIMIT"]
    assert limiter["BACKEND"] == page_limiter["BACKEND"]
    assert differences(limiter["OPTIONS"], page_limiter["OPTIONS"]) == {
        ("rate",),
        ("burst",),
        ("key_prefix",),
    }
    # The page's SOPHIE_CHAT keys merged into the quickstart's (its LLM); nothing else differs.
    merged = {**quickstart_block()["SOPHIE_CHAT"], **page["SOPHIE_CHAT"]}
    changes = layers("deployment", ran, redis_prefix="run")
    assert differences(ran["SOPHIE_CHAT"], merged) == {
        layer.path[1:] for layer in changes if layer.path[0] == "SOPHIE_CHAT"
    }
    # The page installs the aiohttp extra: the backend's default transport is kept.
    assert "http_client" not in ran["SOPHIE_CHAT"]["LLM"]["OPTIONS"]


def test_a_change_to_the_pages_changes_the_benchmark(tmp_path, monkeypatch, deployment_env):
    deployment = tmp_path / "deployment.md"
    text = recipe.DOCS.read_text()
    assert text.count("max_size=8,") == 1
    deployment.write_text(text.replace("max_size=8,", "max_size=16,"))
    monkeypatch.setattr(configurations, "DEPLOYMENT", deployment)
    quickstart = tmp_path / "quickstart.md"
    text = QUICKSTART.read_text()
    assert text.count('"model": "gpt-4o-mini"') == 1
    quickstart.write_text(text.replace('"model": "gpt-4o-mini"', '"model": "gpt-5-nano"'))
    site = make_quickstart_site(tmp_path / "site", quickstart)

    ran = benchmark_settings("deployment", site, redis_prefix="run")
    assert ran["DATABASES"]["default"]["OPTIONS"]["pool"]["max_size"] == 16
    assert ran["SOPHIE_CHAT"]["LLM"]["OPTIONS"]["model"] == "gpt-5-nano"
    ran = benchmark_settings("quickstart", site, redis_prefix="run")
    assert ran["SOPHIE_CHAT"]["LLM"]["OPTIONS"]["model"] == "gpt-5-nano"


@pytest.mark.parametrize("profile", ["quickstart", "deployment"])
def test_the_benchmarks_django_project_runs_those_settings(site, deployment_env, profile):
    """``benchmarks.settings``, as a server process imports it."""
    script = (
        "import json; from django.conf import settings; print(json.dumps({name: "
        f"getattr(settings, name) for name in {configurations.TAKEN!r}}}, "
        "default=lambda value: getattr(value, '__qualname__', None) or str(value)))"
    )
    served = run_command(
        [sys.executable, "-c", script],
        env=project_env(
            DJANGO_SETTINGS_MODULE="benchmarks.settings",
            BENCH_SETTINGS=profile,
            BENCH_SITE_SETTINGS=str(site),
            BENCH_REDIS_PREFIX="run",
            REDIS_URL=REDIS,
            DATABASE_URL=DATABASE,
        ),
    )
    expected = benchmark_settings(profile, site, redis_prefix="run")
    assert json.loads(served) == json.loads(json.dumps(expected, default=named))


def test_every_layer_is_listed_in_docs_performance(site, deployment_env):
    page = (ROOT / "docs" / "performance.md").read_text()
    for profile in ("quickstart", "deployment"):
        settings = configurations.documented_settings(profile, site)
        for layer in layers(profile, settings, redis_prefix="run"):
            assert f"`{layer.path[-1]}`" in page, layer


def test_every_configuration_is_labelled_and_served(site):
    assert set(CONFIGURATIONS) == {
        "quickstart",
        "deployment",
        "tuned",
        "bare",
        "bare-redis",
        "naive",
    }
    assert len({c.label for c in CONFIGURATIONS.values()}) == len(CONFIGURATIONS)
    assert {c.settings for c in CONFIGURATIONS.values()} == {"quickstart", "deployment", "tuned"}


def test_a_run_can_be_limited_to_some_configurations():
    scenarios = runner.with_configs(runner.full_scenarios(), ["deployment", "naive"])
    assert {s.name: s.configs for s in scenarios} == {
        "throughput": ("deployment", "naive"),
        "visits": ("deployment", "naive"),
        "chat": ("deployment", "naive"),
    }


def test_the_committed_results_make_the_committed_table():
    """``python -m benchmarks report`` re-makes docs/performance/results.md as committed."""
    results = json.loads((ROOT / "docs" / "performance" / "results.json").read_text())
    table = report.markdown(copy.deepcopy(results["run"]), results.get("soak"))
    assert "### Targets" in table
    assert table.strip() in (ROOT / "docs" / "performance" / "results.md").read_text()


def test_results_written_before_the_configurations_are_still_made_into_a_table():
    """Results of one Sophie (``"sophie"``, the tuned settings) beside the baselines."""
    results = json.loads((ROOT / "docs" / "performance" / "results.json").read_text())
    run = copy.deepcopy(results["run"])
    legacy = {"tuned": "sophie", "bare": "bare", "naive": "naive"}
    for found in run["scenarios"]:
        found.pop("profiles", None)
        found["configs"] = [legacy[c] for c in found["configs"] if c in legacy]
        found["segments"] = [
            {**segment, "config": legacy[segment["config"]]}
            for segment in found["segments"]
            if segment["config"] in legacy
        ]
    run.pop("configurations", None)
    table = report.markdown(run, None)
    assert "### Targets" in table
    assert "| Sophie |" in table
