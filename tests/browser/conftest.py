"""Fixtures for the browser tests: Chromium, the demo served by daphne, the fake model.

Every test module here is marked ``browser`` (its tests skip without
Chromium and Playwright, and fail instead under ``CI=true``). Servers are started once
per session and shared; each test gets fresh browser contexts (so a fresh
``localStorage``: a new visitor) and can read a server's database to check
what was stored. A failing test's report shows the output of the servers.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.browser import TIMEOUT_MS, Tab, launch_chromium
from tests.support.demo import DemoServer, demo_server, make_template_database
from tests.support.openai_server import FakeOpenAIProcess

# Servers ------------------------------------------------------------------------


@pytest.fixture(scope="session")
def playwright_instance() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="session")
def chromium(playwright_instance: Any) -> Iterator[Any]:
    browser = launch_chromium(playwright_instance)
    yield browser
    browser.close()


@pytest.fixture(scope="session")
def demo_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_template_database(tmp_path_factory.mktemp("demo-db"))


@pytest.fixture(scope="session")
def demo(demo_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoServer]:
    """The demo as ``make demo`` serves it: the offline backend, answering from the knowledge."""
    server = demo_server("offline", demo_template, tmp_path_factory.mktemp("demo-offline"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def _model_demo(
    demo_template: Path,
    fake_openai_process: FakeOpenAIProcess,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[DemoServer]:
    server = demo_server(
        "openai",
        demo_template,
        tmp_path_factory.mktemp("demo-openai"),
        model_url=fake_openai_process.url,
    )
    yield server
    server.stop()


@pytest.fixture
def model_demo(_model_demo: DemoServer, fake_openai: FakeOpenAIProcess) -> DemoServer:
    """The demo with ``OPENAI_API_KEY`` set, talking to the fake OpenAI server (reset)."""
    return _model_demo


@pytest.fixture(scope="session")
def _limited_demo(
    demo_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DemoServer]:
    server = demo_server(
        "limited",
        demo_template,
        tmp_path_factory.mktemp("demo-limited"),
        rate="1/m",
        max_connections_per_client=1,
    )
    yield server
    server.stop()


@pytest.fixture
def limited_demo(_limited_demo: DemoServer) -> DemoServer:
    """The demo allowing one message a minute and one connection per visitor
    (connections of earlier tests closed)."""
    _limited_demo.wait_until_idle()
    return _limited_demo


@pytest.fixture
def own_demo(demo_template: Path, tmp_path: Path) -> Iterator[DemoServer]:
    """A demo server for this test alone (it may stop and start it)."""
    server = demo_server("own", demo_template, tmp_path)
    yield server
    server.stop()


# Pages ------------------------------------------------------------------------------


@pytest.fixture
def browser_context(chromium: Any) -> Iterator[Callable[..., Any]]:
    """``context = browser_context(**options)``: a fresh visitor; closed after the test."""
    contexts: list[Any] = []

    def _new(**options: Any) -> Any:
        options.setdefault("viewport", {"width": 1280, "height": 800})
        options.setdefault("locale", "en-US")
        context = chromium.new_context(**options)
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        return context

    yield _new
    for context in contexts:
        with contextlib.suppress(Exception):
            context.close()


@pytest.fixture
def open_tab(browser_context: Callable[..., Any]) -> Callable[..., Tab]:
    """``tab = open_tab(url, context=None, **context_options)``: a loaded page of the demo."""

    def _open(url: str, context: Any = None, **options: Any) -> Tab:
        tab = Tab((context or browser_context(**options)).new_page()).watch_console()
        tab.page.goto(url)
        tab.launcher.wait_for(state="visible")
        return tab

    return _open
