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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.browser.servers import DemoServer, demo_server, launch_chromium, make_template_database
from tests.e2e.conftest import FakeOpenAI, _running, start_fake_openai

#: How long a test waits for something the widget should show.
TIMEOUT_MS = 15_000


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.failed and Path(str(item.fspath)).is_relative_to(Path(__file__).parent):
        # The servers the test asked for, else every server still running.
        funcargs = getattr(item, "funcargs", {})
        used = [v.process for v in funcargs.values() if isinstance(v, DemoServer | FakeOpenAI)]
        for process in [p for p in used if p is not None] or list(_running):
            report.sections.append((f"output of {process.name}", process.tail()))
    return report


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
def fake_model(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeOpenAI]:
    server = start_fake_openai(tmp_path_factory.mktemp("fake-openai"))
    yield server
    server.process.stop()


@pytest.fixture(scope="session")
def demo(demo_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoServer]:
    """The demo as ``make demo`` serves it: the offline backend, answering from the knowledge."""
    server = demo_server("offline", demo_template, tmp_path_factory.mktemp("demo-offline"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def _model_demo(
    demo_template: Path, fake_model: FakeOpenAI, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DemoServer]:
    server = demo_server(
        "openai", demo_template, tmp_path_factory.mktemp("demo-openai"), model_url=fake_model.url
    )
    yield server
    server.stop()


@pytest.fixture
def model_demo(_model_demo: DemoServer, fake_model: FakeOpenAI) -> DemoServer:
    """The demo with ``OPENAI_API_KEY`` set, talking to the fake OpenAI server (reset)."""
    fake_model.reset()
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


@dataclass
class Tab:
    """A page of the demo with the widget, and what its console said."""

    page: Any
    console_errors: list[str] = field(default_factory=list)

    def widget(self, selector: str = "") -> Any:
        """A locator inside the widget's shadow root (Playwright's CSS pierces open roots)."""
        return self.page.locator(f"sophie-chat {selector}".strip())

    @property
    def panel(self) -> Any:
        return self.widget(".panel")

    @property
    def launcher(self) -> Any:
        return self.widget(".launcher")

    @property
    def input(self) -> Any:
        return self.widget(".input")

    @property
    def log(self) -> Any:
        return self.widget(".log")

    @property
    def status(self) -> Any:
        return self.widget(".status")

    def open(self) -> Tab:
        """Open the panel with the launcher (it stays open across pages of a visit)."""
        if self.panel.is_hidden():
            self.launcher.click()
        self.panel.wait_for(state="visible")
        return self

    def wait_online(self) -> Tab:
        self.widget('.panel[data-connection="online"]').wait_for(timeout=TIMEOUT_MS)
        return self

    def ask(self, text: str) -> Tab:
        self.input.fill(text)
        self.input.press("Enter")
        return self

    def answers(self) -> Any:
        """The assistant's stored answers (the greeting excluded)."""
        return self.widget(".msg--assistant[data-id]")

    def wait_answers(self, count: int) -> Any:
        """The ``count``-th finished answer (with its feedback buttons); returns it."""
        answer = self.widget(".msg--assistant[data-id]:not(.msg--streaming)").nth(count - 1)
        answer.locator(".msg__actions").wait_for(timeout=TIMEOUT_MS)
        return answer

    def user_messages(self) -> Any:
        return self.widget(".msg--user")

    def texts(self, locator: Any) -> list[str]:
        return [text.strip() for text in locator.locator(".msg__text").all_inner_texts()]


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
        page = (context or browser_context(**options)).new_page()
        tab = Tab(page)
        page.on("console", lambda message: _record_console_error(tab, message))
        page.on("pageerror", lambda error: tab.console_errors.append(f"uncaught: {error}"))
        page.goto(url)
        tab.launcher.wait_for(state="visible")
        return tab

    return _open


def _record_console_error(tab: Tab, message: Any) -> None:
    # A site without a favicon is the site's business, not the widget's.
    if message.type == "error" and not message.location.get("url", "").endswith("/favicon.ico"):
        tab.console_errors.append(f"{message.text} ({message.location.get('url')})")
