"""Chromium driven by Playwright, a page of the demo with the widget, and axe audits.

Debian's Chromium (``/usr/bin/chromium``, or ``CHROMIUM``): Playwright's own
browser download cannot work here. Used by the browser tests' fixtures and
by the screenshot scripts.
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass, field
from typing import Any

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
#: How long a test waits for something the widget should show.
TIMEOUT_MS = 15_000


def launch_chromium(playwright: Any) -> Any:
    """Debian's Chromium, driven by ``playwright`` (a started ``sync_playwright()``)."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


@dataclass
class Tab:
    """A page of the demo with the widget, and what its console said."""

    page: Any
    console_errors: list[str] = field(default_factory=list)

    def watch_console(self) -> Tab:
        """Record the page's console errors and uncaught exceptions in :attr:`console_errors`."""
        self.page.on("console", self._record_console_error)
        self.page.on("pageerror", lambda error: self.console_errors.append(f"uncaught: {error}"))
        return self

    def _record_console_error(self, message: Any) -> None:
        # A site without a favicon is the site's business, not the widget's.
        if message.type == "error" and not message.location.get("url", "").endswith(
            "/favicon.ico"
        ):
            self.console_errors.append(f"{message.text} ({message.location.get('url')})")

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


BLOCKING_IMPACTS = {"serious", "critical"}


def axe_violations(page: Any, selector: str | None = None) -> list[str]:
    """Serious and critical axe-core violations (axe bundled with axe-playwright-python)."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page, context=selector)
    # The audit did look at the widget: its parts are among the checked nodes.
    assert "sophie-chat" in str(results.response["passes"])
    return [
        f"{violation['id']} ({violation['impact']}): {violation['help']} "
        f"at {[node['target'] for node in violation['nodes']]}"
        for violation in results.response["violations"]
        if violation["impact"] in BLOCKING_IMPACTS
    ]


class StandInChat:
    """A chat server stand-in for widget tests (``page.route_web_socket(CHAT_SOCKET, chat)``).

    One per test, shared by every tab routed to it (the tabs of one visitor):
    it greets each socket with ``welcome`` (``features`` as the subclass
    says), answers ``session_init`` with an empty active conversation, and
    passes every other frame to :meth:`on_frame`. ``received`` holds every
    frame the widget sent.
    """

    features: dict[str, bool] = {"tools": False, "handoff": False}

    def __init__(self) -> None:
        self.sockets: list = []
        self.received: list[dict] = []
        self.session_id = str(uuid.uuid4())

    def __call__(self, socket: Any) -> None:
        self.sockets.append(socket)
        socket.on_message(lambda raw: self._on_frame(socket, json.loads(raw)))
        socket.send(
            json.dumps(
                {
                    "type": "welcome",
                    "assistant": {"name": "Sophie"},
                    "protocol": 1,
                    "greeting": "Hi! I'm Sophie.",
                    "limits": {"max_message_length": 2000},
                    "features": self.features,
                }
            )
        )

    def broadcast(self, frame: dict) -> None:
        for socket in self.sockets:
            socket.send(json.dumps(frame))

    def on_session(self, socket: Any, frame: dict) -> None:
        """After the ``session`` reply to ``session_init`` (``frame``)."""

    def on_frame(self, socket: Any, frame: dict) -> None:
        """Any frame but ``session_init``."""

    def _on_frame(self, socket: Any, frame: dict) -> None:
        self.received.append(frame)
        if frame["type"] != "session_init":
            self.on_frame(socket, frame)
            return
        socket.send(
            json.dumps(
                {
                    "type": "session",
                    "session_id": self.session_id,
                    "resume_token": "token",
                    "resumed": "session_id" in frame,
                    "status": "active",
                    "history": [],
                }
            )
        )
        self.on_session(socket, frame)
