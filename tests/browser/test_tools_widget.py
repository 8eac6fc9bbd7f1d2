"""The widget's side of tools: "Looking up…" while a tool runs, and Confirm / Cancel.

These tests put a scripted stand-in in place of the chat's WebSocket (the
same routing the connection tests use), so each frame of the protocol's
"Tools" section arrives exactly when the test says; the confirmation flow
against the demo's real server and a scripted model is in test_tools.py.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from tests.support.browser import StandInChat, axe_violations

pytestmark = pytest.mark.browser

CHAT_SOCKET = re.compile(r"/ws/chat/")
SUMMARY = "Move booking 7 (Deep cleaning) to Friday, 12 December at 09:00"
LABEL = "Moving your booking…"


def _now() -> str:
    return datetime.now(UTC).isoformat()


class ToolsChat(StandInChat):
    """A stand-in chat server: every question starts a tool that asks for confirmation.

    ``confirm_request`` and ``confirm_closed`` go to every socket, as the
    real server sends them to every tab of the conversation.
    """

    features = {"tools": True, "handoff": False}

    def __init__(self, *, confirm: bool = True) -> None:
        super().__init__()
        self.confirm = confirm
        self.open: dict[str, dict] = {}  # confirmation_id -> the turn waiting on it
        self.closed: set[str] = set()

    def on_session(self, socket, frame: dict) -> None:
        # As the real server does: a resumed tab is asked again.
        for turn in self.open.values():
            socket.send(json.dumps(turn["request"]))

    def on_frame(self, socket, frame: dict) -> None:
        if frame["type"] == "message":
            self._start_turn(frame)
        elif frame["type"] == "confirm":
            self._on_confirm(socket, frame)

    def _start_turn(self, frame: dict) -> None:
        question_id, answer_id = str(uuid.uuid4()), str(uuid.uuid4())
        call_id, confirmation_id = f"call-{uuid.uuid4().hex[:8]}", str(uuid.uuid4())
        self.broadcast(
            {
                "type": "message",
                "message": {
                    "id": question_id,
                    "role": "user",
                    "content": frame["content"],
                    "client_message_id": frame["client_message_id"],
                    "created_at": _now(),
                    "metadata": {},
                },
            }
        )
        self.broadcast({"type": "stream_start", "message_id": answer_id, "reply_to": question_id})
        self.broadcast({"type": "stream_delta", "message_id": answer_id, "delta": "Let me see. "})
        self.broadcast(
            {
                "type": "tool_start",
                "message_id": answer_id,
                "call_id": call_id,
                "name": "reschedule_booking",
                "label": LABEL,
            }
        )
        turn = {"answer_id": answer_id, "call_id": call_id, "text": "Let me see. "}
        if not self.confirm:
            self.finish(turn, "ok", "Your booking is on Friday.")
            return
        turn["request"] = {
            "type": "confirm_request",
            "confirmation_id": confirmation_id,
            "call_id": call_id,
            "tool": "reschedule_booking",
            "summary": SUMMARY,
            "expires_at": (datetime.now(UTC) + timedelta(seconds=120)).isoformat(),
        }
        self.open[confirmation_id] = turn
        self.broadcast(turn["request"])

    def _on_confirm(self, socket, frame: dict) -> None:
        confirmation_id = frame["confirmation_id"]
        turn = self.open.pop(confirmation_id, None)
        if turn is None:
            code = "confirmation_expired" if confirmation_id in self.closed else ""
            socket.send(
                json.dumps(
                    {
                        "type": "error",
                        "code": code or "confirmation_not_found",
                        "message": "This confirmation is no longer open.",
                    }
                )
            )
            return
        outcome = "accepted" if frame["accept"] else "declined"
        self.decide(confirmation_id, turn, outcome)

    def expire(self) -> None:
        """Let every open confirmation lapse, as CONFIRM_TIMEOUT does."""
        for confirmation_id, turn in list(self.open.items()):
            del self.open[confirmation_id]
            self.decide(confirmation_id, turn, "expired")

    def decide(self, confirmation_id: str, turn: dict, outcome: str) -> None:
        self.closed.add(confirmation_id)
        self.broadcast(
            {"type": "confirm_closed", "confirmation_id": confirmation_id, "outcome": outcome}
        )
        if outcome == "accepted":
            self.finish(turn, "ok", "Done: your cleaning is now on Friday at 09:00.")
        else:
            self.finish(turn, "cancelled", "All right, I left your booking as it was.")

    def finish(self, turn: dict, status: str, text: str) -> None:
        self.broadcast({"type": "tool_end", "call_id": turn["call_id"], "status": status})
        self.broadcast({"type": "stream_delta", "message_id": turn["answer_id"], "delta": text})
        self.broadcast(
            {
                "type": "stream_end",
                "message": {
                    "id": turn["answer_id"],
                    "role": "assistant",
                    "content": turn["text"] + text,
                    "created_at": _now(),
                    "metadata": {"sources": [], "tools": [{"name": "reschedule_booking"}]},
                },
            }
        )

    def confirms(self) -> list[dict]:
        return [frame for frame in self.received if frame["type"] == "confirm"]


@pytest.fixture
def chat() -> ToolsChat:
    return ToolsChat()


def routed_tab(open_tab, demo, chat, *, context=None, **options):
    """A tab of the demo whose chat socket is ``chat``, opened and online."""
    tab = open_tab(demo.url, context=context, **options)
    tab.page.route_web_socket(CHAT_SOCKET, chat)
    return tab.open().wait_online()


def test_a_running_tool_shows_its_label_in_the_answer_until_it_ends(demo, open_tab):
    chat = ToolsChat(confirm=False)
    tab = open_tab(demo.url)
    # The tool ends only when the test says: hold the finishing frames back.
    held: list = []
    chat.finish = lambda turn, status, text: held.append((turn, status, text))
    tab.page.route_web_socket(CHAT_SOCKET, chat)
    tab.open().wait_online()

    tab.ask("When is my cleaner coming?")

    tool = tab.widget(".msg--streaming .msg__tool")
    tool.wait_for()
    assert tool.inner_text().strip() == LABEL
    # Said to screen readers too: the log is busy while the answer streams.
    tab.widget(".panel > .sr-only[role=status]").filter(has_text=LABEL).wait_for()
    turn, status, text = held.pop()
    ToolsChat.finish(chat, turn, status, text)
    answer = tab.wait_answers(1)
    assert tab.widget(".msg__tool").count() == 0
    assert answer.locator(".msg__text").inner_text().strip() == (
        "Let me see. Your booking is on Friday."
    )
    assert tab.console_errors == []


def test_confirm_request_shows_the_summary_and_accepting_sends_confirm_once(demo, open_tab, chat):
    tab = routed_tab(open_tab, demo, chat)

    tab.ask("Move my cleaning to Friday")

    card = tab.widget(".confirm")
    card.wait_for()
    assert card.locator(".confirm__summary").inner_text() == SUMMARY
    assert card.get_attribute("role") == "group"
    page = tab.page
    page.get_by_role("button", name="Confirm").click()
    tab.widget('.confirm[data-outcome="accepted"]').wait_for()
    answer = tab.wait_answers(1)

    assert card.locator("button").count() == 0
    assert card.locator(".confirm__status").inner_text() == "Confirmed."
    assert "now on Friday" in answer.locator(".msg__text").inner_text()
    assert [(f["confirmation_id"], f["accept"]) for f in chat.confirms()] == [
        (card.get_attribute("data-confirmation-id"), True)
    ]
    assert tab.console_errors == []


def test_cancel_declines_and_says_nothing_changed(demo, open_tab, chat):
    tab = routed_tab(open_tab, demo, chat)
    tab.ask("Move my cleaning to Friday")

    tab.page.get_by_role("button", name="Cancel").click()

    card = tab.widget('.confirm[data-outcome="declined"]')
    card.wait_for()
    assert card.locator(".confirm__status").inner_text() == "Cancelled. Nothing was changed."
    assert [f["accept"] for f in chat.confirms()] == [False]
    tab.wait_answers(1)


def test_an_expired_request_loses_its_buttons(demo, open_tab, chat):
    tab = routed_tab(open_tab, demo, chat)
    tab.ask("Move my cleaning to Friday")
    tab.widget(".confirm button").first.wait_for()

    chat.expire()

    card = tab.widget('.confirm[data-outcome="expired"]')
    card.wait_for()
    assert card.locator("button").count() == 0
    assert "expired" in card.locator(".confirm__status").inner_text()
    assert chat.confirms() == []


def test_a_late_answer_is_told_the_request_expired(demo, open_tab, chat):
    tab = routed_tab(open_tab, demo, chat)
    tab.ask("Move my cleaning to Friday")
    tab.widget(".confirm button").first.wait_for()
    # The server let it lapse, and its confirm_closed was lost with a connection.
    for confirmation_id in list(chat.open):
        chat.closed.add(confirmation_id)
        chat.open.pop(confirmation_id)

    tab.page.get_by_role("button", name="Confirm").click()

    card = tab.widget('.confirm[data-outcome="expired"]')
    card.wait_for()
    assert card.locator(".confirm__status").inner_text() == (
        "This request expired. Nothing was changed."
    )
    # Told in its place, not as a second notice in the log.
    assert tab.widget(".notice").count() == 0


def test_a_second_tab_sees_the_request_closed(demo, open_tab, browser_context, chat):
    context = browser_context()
    first = routed_tab(open_tab, demo, chat, context=context)
    second = routed_tab(open_tab, demo, chat, context=context)
    first.ask("Move my cleaning to Friday")
    second.widget(".confirm button").first.wait_for()

    first.page.get_by_role("button", name="Confirm").click()

    for tab in (first, second):
        card = tab.widget('.confirm[data-outcome="accepted"]')
        card.wait_for()
        assert card.locator("button").count() == 0
    assert len(chat.confirms()) == 1


def test_after_a_reconnection_a_request_still_open_keeps_its_buttons(demo, open_tab, chat):
    tab = routed_tab(open_tab, demo, chat)
    tab.ask("Move my cleaning to Friday")
    tab.widget(".confirm__accept").wait_for()

    chat.sockets[0].close()  # the connection drops; the widget reconnects and resumes

    tab.widget('.panel[data-connection="online"]').wait_for()
    time.sleep(3.5)  # past the widget's wait for the server to ask again
    assert tab.widget(".confirm").count() == 1
    tab.widget(".confirm__accept").click()
    tab.widget('.confirm[data-outcome="accepted"]').wait_for()
    assert len(chat.sockets) == 2
    assert len(chat.confirms()) == 1


def test_after_a_reconnection_a_request_decided_meanwhile_loses_its_buttons(demo, open_tab, chat):
    tab = routed_tab(open_tab, demo, chat)
    tab.ask("Move my cleaning to Friday")
    tab.widget(".confirm__accept").wait_for()
    # Answered in another tab while this one's connection was down: its
    # confirm_closed went to the old connection.
    decided = dict(chat.open)
    chat.open.clear()
    chat.closed.update(decided)

    chat.sockets[0].close()

    card = tab.widget('.confirm[data-outcome="gone"]')
    card.wait_for()
    assert card.locator("button").count() == 0
    assert card.locator(".confirm__status").inner_text() == "This request is no longer open."


def test_keyboard_alone_reaches_and_answers_the_confirmation(demo, open_tab, chat):
    from playwright.sync_api import expect

    tab = routed_tab(open_tab, demo, chat)
    page = tab.page
    tab.input.focus()
    page.keyboard.type("Move my cleaning to Friday")
    page.keyboard.press("Enter")

    # The card takes the focus, not its Confirm button: a stray Enter accepts nothing.
    card = tab.widget(".confirm")
    expect(card).to_be_focused()
    page.keyboard.press("Enter")
    assert chat.confirms() == []
    page.keyboard.press("Tab")
    expect(tab.widget(".confirm__accept")).to_be_focused()
    page.keyboard.press("Tab")
    expect(tab.widget(".confirm__decline")).to_be_focused()
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Enter")

    tab.widget('.confirm[data-outcome="accepted"]').wait_for()
    # The buttons are gone: the focus goes back to the message box.
    expect(tab.input).to_be_focused()
    assert [f["accept"] for f in chat.confirms()] == [True]


def test_a_visitor_typing_keeps_the_focus_when_a_request_arrives(demo, open_tab, chat):
    from playwright.sync_api import expect

    tab = routed_tab(open_tab, demo, chat)
    tab.input.fill("And could you also")

    # A question asked in another tab of the conversation starts a tool here too.
    chat._start_turn({"content": "Move my cleaning to Friday", "client_message_id": "other"})

    tab.widget(".confirm button").first.wait_for()
    expect(tab.input).to_be_focused()
    assert tab.input.input_value() == "And could you also"


def test_screen_readers_hear_the_request_and_its_outcome(demo, open_tab, chat):
    tab = routed_tab(open_tab, demo, chat)
    announcer = tab.widget(".panel > .sr-only[role=status]")
    assert announcer.get_attribute("aria-live") == "polite"
    tab.ask("Move my cleaning to Friday")

    tab.widget(".confirm").wait_for()
    announcer.filter(has_text=f"Sophie asks you to confirm: {SUMMARY}").wait_for()
    group = tab.page.get_by_role("group", name="Please confirm")
    assert group.get_attribute("aria-describedby")
    tab.page.get_by_role("button", name="Cancel").click()

    announcer.filter(has_text="Cancelled. Nothing was changed.").wait_for()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_an_open_confirmation_has_no_serious_axe_violations(demo, open_tab, chat, scheme):
    tab = routed_tab(open_tab, demo, chat, color_scheme=scheme)
    tab.ask("Move my cleaning to Friday")
    tab.widget(".confirm button").first.wait_for()

    # Under the demo's strict CSP: nothing refused, nothing thrown (before axe
    # injects its own script and styles).
    assert tab.console_errors == []
    assert axe_violations(tab.page) == []


def test_the_confirmation_is_in_portuguese_for_a_portuguese_page(demo, open_tab, chat):
    tab = open_tab(demo.url, locale="pt-BR")
    tab.page.route_web_socket(CHAT_SOCKET, chat)
    tab.open().wait_online()
    tab.ask("Mude a minha limpeza para sexta")

    card = tab.widget(".confirm")
    card.wait_for()

    assert card.locator(".confirm__title").inner_text().lower() == "confirme, por favor"
    assert card.locator(".confirm__accept").inner_text() == "Confirmar"
    assert card.locator(".confirm__decline").inner_text() == "Cancelar"
