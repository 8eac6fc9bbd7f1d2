"""The configurations the benchmark compares, and the settings each server runs.

Sophie runs in three configurations, each in a server of its own:

* ``quickstart``: the site docs/quickstart.md makes. ``django-admin
  startproject`` is run and the quickstart's settings block added at the end
  of its ``settings.py``, as the page says; the server takes that file's
  database (``startproject``'s SQLite file, with the page's WAL mode and kept
  connections), its
  channel layer (in memory) and caches (none: Django's local-memory cache),
  and its ``SOPHIE_CHAT``. No extras are installed on that site, so the
  model's requests go over the SDK's default transport, httpx.
* ``deployment``: that site with docs/deployment.md's production settings
  block added, executed as printed (PostgreSQL with the page's pool,
  channels-redis, django-redis, ``RedisRateLimiter``), its ``SOPHIE_CHAT``
  keys merged into the quickstart's as the page says; ``REDIS_URL`` and
  ``DATABASE_URL`` point at the benchmark's Redis and PostgreSQL database.
  The page installs the ``aiohttp`` extra.
* ``tuned``: the benchmark's own settings (:mod:`benchmarks.settings`).

The two baselines (:mod:`benchmarks.baselines`) run in the tuned project, and
the bare consumer once more on the deployment's channel layer
(``bare-redis``), the floor of a site on channels-redis.

The settings of the documented configurations are read from the pages each
time a server starts, so a change to a page changes the benchmark
(``tests/test_benchmark_configurations.py`` keeps them in step). On top of
them the benchmark layers only its own needs, :func:`layers`.
"""

from __future__ import annotations

import copy
import runpy
import shlex
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import global_settings
from tests.support.quickstart import DEPLOYMENT, QUICKSTART, Edit, Quickstart, read_blocks

#: The settings a documented configuration takes from its site.
TAKEN = ("DATABASES", "CHANNEL_LAYERS", "CACHES", "SOPHIE_CHAT")
#: The section of docs/deployment.md whose Python block is the production settings.
PRODUCTION_SETTINGS = "Production settings"


@dataclass(frozen=True)
class Configuration:
    """One server under test: a consumer in a project of some settings."""

    name: str
    label: str
    #: The settings the server runs (``BENCH_SETTINGS``): "quickstart", "deployment", "tuned".
    settings: str
    #: The consumer that answers: "sophie", "bare" or "naive".
    consumer: str
    #: What it is, for the table's legend.
    description: str


CONFIGURATIONS = {
    c.name: c
    for c in (
        Configuration(
            "quickstart",
            "Sophie, quickstart",
            "quickstart",
            "sophie",
            "the quickstart's site: `startproject`'s SQLite file in the page's WAL mode, kept "
            "connections, "
            "the in-memory channel layer, the local-memory cache, the SDK's httpx transport",
        ),
        Configuration(
            "deployment",
            "Sophie, deployment",
            "deployment",
            "sophie",
            "the deployment page's settings block: PostgreSQL with the page's pool, "
            "channels-redis, django-redis caches, `RedisRateLimiter`, the aiohttp extra",
        ),
        Configuration(
            "tuned",
            "Sophie, tuned",
            "tuned",
            "sophie",
            "the benchmark's own settings: kept database connections, SQLite in WAL mode when "
            "on SQLite, the in-memory channel layer, the local-memory cache, the aiohttp extra",
        ),
        Configuration(
            "bare",
            "bare consumer",
            "tuned",
            "bare",
            "the floor: a plain Channels consumer and a minimal HTTP client, storing nothing "
            "(in-memory channel layer)",
        ),
        Configuration(
            "bare-redis",
            "bare consumer, channels-redis",
            "deployment",
            "bare",
            "the same bare consumer in the deployment configuration's project, on channels-redis",
        ),
        Configuration(
            "naive",
            "naive consumer (SDK)",
            "tuned",
            "naive",
            "a tutorial's relay of the `openai` SDK's stream (in-memory channel layer)",
        ),
    )
}

#: The SDK transport each settings profile's site has (``OpenAIBackend``'s ``http_client``):
#: the quickstart installs no extra; None is the default, aiohttp when it is installed.
TRANSPORTS: dict[str, str | None] = {"quickstart": "httpx", "deployment": None, "tuned": None}


# The sites the pages make -------------------------------------------------------------


def make_quickstart_site(folder: Path, page: Path = QUICKSTART) -> Path:
    """Do the quickstart's (``page``'s) steps that make files in ``folder``; its ``settings.py``.

    ``django-admin startproject`` as section 1 says, then every file of
    sections 2 to 6 (the settings added at the end, ``asgi.py``, ``urls.py``,
    the page, the knowledge file). Installing, migrating and loading the
    knowledge are the benchmark's own (its database, its knowledge base).
    """
    quickstart = Quickstart.read(page)
    [command] = [c for c in quickstart.install if c.startswith("django-admin startproject ")]
    argv = shlex.split(command)
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [sys.executable, "-m", "django", *argv[1:]], cwd=folder, check=True, capture_output=True
    )
    project = folder / argv[2]
    for step in quickstart.setup:
        if isinstance(step, Edit):
            step.apply(project)
    return project / argv[2] / "settings.py"


def _site_settings(namespace: Mapping[str, Any]) -> dict[str, Any]:
    settings = {name: copy.deepcopy(namespace[name]) for name in TAKEN if name in namespace}
    # startproject sets no CACHES: Django's default, one local-memory cache.
    settings.setdefault("CACHES", copy.deepcopy(global_settings.CACHES))
    return settings


def quickstart_settings(settings_file: Path) -> dict[str, Any]:
    """:data:`TAKEN` of the quickstart's site, its ``settings.py`` executed as it is."""
    return _site_settings(runpy.run_path(str(settings_file)))


def production_settings(page: Path | None = None) -> dict[str, Any]:
    """The settings the deployment page's production block defines, executed as printed
    (it reads ``REDIS_URL`` and ``DATABASE_URL``)."""
    page = page or DEPLOYMENT
    [block] = [
        b
        for b in read_blocks(page)
        if b.heading == PRODUCTION_SETTINGS and b.language == "python"
    ]
    namespace: dict[str, Any] = {"__name__": "deployment_settings"}
    exec(compile(block.text, str(page), "exec"), namespace)
    return {name: value for name, value in namespace.items() if name.isupper()}


def deployment_settings(settings_file: Path) -> dict[str, Any]:
    """:data:`TAKEN` of the quickstart's site with the deployment page's block added.

    The block is executed as printed; its ``SOPHIE_CHAT`` keys are merged
    into the site's, as the page says.
    """
    site = runpy.run_path(str(settings_file))
    page = production_settings()
    merged = {**site, **page, "SOPHIE_CHAT": {**site["SOPHIE_CHAT"], **page["SOPHIE_CHAT"]}}
    return _site_settings(merged)


def documented_settings(profile: str, settings_file: Path) -> dict[str, Any]:
    if profile == "quickstart":
        return quickstart_settings(settings_file)
    if profile == "deployment":
        return deployment_settings(settings_file)
    raise ValueError(f"{profile!r} is not a documented configuration")


# What the benchmark adds --------------------------------------------------------------


@dataclass(frozen=True)
class Layer:
    """One setting the benchmark changes on a documented configuration, and why."""

    path: tuple[str, ...]
    value: Any
    why: str


def layers(profile: str, settings: Mapping[str, Any], *, redis_prefix: str) -> list[Layer]:
    """The benchmark's own needs, on top of a documented configuration's ``settings``.

    Listed in docs/performance.md; the test of the configurations checks
    that nothing else differs from the pages.
    """
    found = [
        Layer(
            ("SOPHIE_CHAT", "MAX_CONNECTIONS_PER_CLIENT"),
            50_000,
            "every simulated visitor connects from 127.0.0.1",
        ),
        Layer(
            ("SOPHIE_CHAT", "MAX_CONNECTIONS_PER_PROCESS"),
            50_000,
            "10,000 idle sessions in one process",
        ),
        Layer(
            ("SOPHIE_CHAT", "RATE_LIMIT", "OPTIONS", "rate"),
            "1000000/m",
            "limiting is measured, refusing never happens",
        ),
        Layer(("SOPHIE_CHAT", "RATE_LIMIT", "OPTIONS", "burst"), None, "idem"),
        Layer(
            ("SOPHIE_CHAT", "SESSION_START_RATE"),
            None,
            "thousands of sessions start from 127.0.0.1 within seconds",
        ),
        Layer(
            ("SOPHIE_CHAT", "HEALTH_DETAILS"),
            True,
            "the runner reads the open connections from chat/health/",
        ),
    ]
    transport = TRANSPORTS[profile]
    if transport is not None:
        found.append(
            Layer(
                ("SOPHIE_CHAT", "LLM", "OPTIONS", "http_client"),
                transport,
                "the site has no aiohttp extra: the SDK's default transport",
            )
        )
    if profile == "deployment":
        why = "runs sharing a Redis database never meet (nor answer from another run's cache)"
        found.append(
            Layer(("CHANNEL_LAYERS", "default", "CONFIG", "prefix"), f"{redis_prefix}:asgi", why)
        )
        for alias, cache in settings["CACHES"].items():
            found.append(
                Layer(
                    ("CACHES", alias, "KEY_PREFIX"),
                    f"{redis_prefix}:{cache.get('KEY_PREFIX', '')}",
                    why,
                )
            )
        found.append(
            Layer(("SOPHIE_CHAT", "RATE_LIMIT", "OPTIONS", "key_prefix"), f"{redis_prefix}:rl", why)
        )
    return found


def apply(settings: Mapping[str, Any], changes: list[Layer]) -> dict[str, Any]:
    """A copy of ``settings`` with each layer's value set (dictionaries made as needed)."""
    result = copy.deepcopy(dict(settings))
    for layer in changes:
        target = result
        for key in layer.path[:-1]:
            target = target.setdefault(key, {})
        target[layer.path[-1]] = layer.value
    return result


def benchmark_settings(profile: str, settings_file: Path, *, redis_prefix: str) -> dict[str, Any]:
    """What a server of a documented configuration runs: the page's settings, layered."""
    documented = documented_settings(profile, settings_file)
    return apply(documented, layers(profile, documented, redis_prefix=redis_prefix))
