"""The widget's side of a handoff: "Talk to a person", the state banners, a person's
messages shown as text with their name, their typing, the rating about them, and
leaving a message out of hours.

A scripted stand-in takes the chat's WebSocket (as in test_tools_widget.py), so
each frame of the protocol's "Handoff to a person" section arrives when the test
says; the real server's side is tested in tests/handoff/.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime

import pytest

from tests.support.browser import StandInChat, axe_violations

pytestmark = pytest.mark.browser

CHAT_SOCKET = re.compile(r"/ws/chat/")
HOSTILE = (
    '<img src=x onerror="window.pwned=1"><script>window.pwned=2</script>'
    "**bold** [x](javascript:alert(1))"
)


def _now() -> str:
    return datetime.now(UTC).isoformat()


class HandoffChat(StandInChat):
    """A stand-in chat server with handoff on; what a handoff_request gets is ``on_request``."""

    features = {"tools": False, "handoff": True}

    def __init__(self, *, on_request: dict | None = None) -> None:
        super().__init__()
        self.on_request = on_request or {"type": "handoff", "state": "waiting", "position": 2}

    def on_frame(self, socket, frame: dict) -> None:
        kind = frame["type"]
        if kind == "handoff_request":
            self.broadcast(self.on_request)
        elif kind == "handoff_cancel":
            self.broadcast({"type": "handoff", "state": "ended", "cancelled": True})
        elif kind == "handoff_leave_message":
            socket.send(json.dumps({"type": "ack", "of": "handoff_leave_message"}))
        elif kind == "session_rate":
            socket.send(json.dumps({"type": "ack", "of": "session_rate"}))
        elif kind == "feedback":
            socket.send(
                json.dumps({"type": "ack", "of": "feedback", "message_id": frame["message_id"]})
            )
        elif kind == "message":
            # A person holds the conversation: acknowledged, no answer.
            self.broadcast(
                {
                    "type": "message",
                    "message": {
                        "id": str(uuid.uuid4()),
                        "role": "user",
                        "content": frame["content"],
                        "client_message_id": frame["client_message_id"],
                        "created_at": _now(),
                        "metadata": {},
                    },
                }
            )

    def agent_says(self, text: str, name: str = "Ana") -> None:
        self.broadcast(
            {
                "type": "message",
                "message": {
                    "id": str(uuid.uuid4()),
                    "role": "agent",
                    "content": text,
                    "created_at": _now(),
                    "metadata": {},
                    "agent": {"name": name},
                },
            }
        )

    def sent(self, kind: str) -> list[dict]:
        return [frame for frame in self.received if frame["type"] == kind]


def sophie_answers(chat: HandoffChat, text: str) -> None:
    """An answer of Sophie's, as the real server streams it."""
    answer_id = str(uuid.uuid4())
    chat.broadcast({"type": "stream_start", "message_id": answer_id, "reply_to": ""})
    chat.broadcast({"type": "stream_delta", "message_id": answer_id, "delta": text})
    chat.broadcast(
        {
            "type": "stream_end",
            "message": {
                "id": answer_id,
                "role": "assistant",
                "content": text,
                "created_at": _now(),
                "status": "complete",
                "metadata": {"sources": [], "cached": False, "fallback": False},
            },
        }
    )


def routed_tab(open_tab, demo, chat, **options):
    tab = open_tab(demo.url, **options)
    tab.page.route_web_socket(CHAT_SOCKET, chat)
    return tab.open().wait_online()


def test_talk_to_a_person_then_an_agent_answers_as_text_with_their_name(demo, open_tab):
    chat = HandoffChat()
    tab = routed_tab(open_tab, demo, chat)

    tab.page.get_by_role("button", name="Talk to a person").click()

    status = tab.widget(".handoff__status")
    status.filter(has_text="You are number 2 in line").wait_for()
    assert status.get_attribute("role") == "status"
    assert tab.widget(".handoff__request").is_hidden()
    assert len(chat.sent("handoff_request")) == 1

    chat.broadcast({"type": "handoff", "state": "active", "agent": {"name": "Ana <b>Souza</b>"}})
    status.filter(has_text="You are talking with Ana <b>Souza</b>.").wait_for()
    assert tab.widget(".handoff__avatar").inner_text() == "A"
    chat.broadcast({"type": "typing", "is_typing": True, "role": "agent"})
    tab.widget(".typing").filter(has_text="A support agent is typing…").wait_for()
    chat.agent_says(HOSTILE, name="Ana <b>Souza</b>")

    message = tab.widget(".msg--agent")
    message.wait_for()
    assert message.locator(".msg__text").inner_text() == HOSTILE
    assert message.locator(".msg__author").inner_text() == "Ana <b>Souza</b>"
    assert message.locator("img, script, strong, a, b").count() == 0
    assert tab.page.evaluate("window.pwned") is None
    assert tab.widget(".typing").is_hidden()
    assert tab.console_errors == []


def test_cancel_while_waiting_is_a_keyboard_action(demo, open_tab):
    chat = HandoffChat()
    tab = routed_tab(open_tab, demo, chat)
    request = tab.widget(".handoff__request")
    request.focus()
    tab.page.keyboard.press("Enter")
    cancel = tab.widget(".handoff__cancel")
    cancel.wait_for()

    cancel.focus()
    tab.page.keyboard.press("Enter")

    tab.widget(".handoff__status").filter(has_text="You stopped waiting").wait_for()
    assert len(chat.sent("handoff_cancel")) == 1
    assert cancel.is_hidden()
    assert request.is_visible()


def test_when_the_agent_ends_the_rating_asks_about_them_and_the_chat_stays_open(demo, open_tab):
    chat = HandoffChat(on_request={"type": "handoff", "state": "active", "agent": {"name": "Ana"}})
    tab = routed_tab(open_tab, demo, chat)
    tab.page.get_by_role("button", name="Talk to a person").click()
    tab.widget(".handoff__status").filter(has_text="talking with Ana").wait_for()

    chat.broadcast({"type": "handoff", "state": "ended"})

    title = tab.widget(".rating__title")
    title.wait_for()
    assert title.inner_text() == "How was your conversation with Ana?"
    assert "Ana has left the conversation" in tab.widget(".handoff__status").inner_text()
    tab.widget('.rating__star[data-score="5"]').click()
    tab.widget(".rating").wait_for(state="hidden")
    assert [f["score"] for f in chat.sent("session_rate")] == [5]
    assert tab.panel.is_visible()


def test_out_of_hours_the_visitor_leaves_a_message(demo, open_tab):
    chat = HandoffChat(
        on_request={
            "type": "handoff",
            "state": "unavailable",
            "opens_at": "2026-12-14T12:00:00+00:00",
        }
    )
    tab = routed_tab(open_tab, demo, chat, timezone_id="America/Sao_Paulo")
    tab.page.get_by_role("button", name="Talk to a person").click()

    status = tab.widget(".handoff__status")
    status.filter(has_text="They are back").wait_for()
    assert "Monday, December 14" in status.inner_text()
    assert "09:00 AM" in status.inner_text()
    page = tab.page
    page.get_by_role("button", name="Send message").click()
    assert tab.widget('.handoff__field input[name="contact"]').get_attribute("aria-invalid")
    assert chat.sent("handoff_leave_message") == []
    page.get_by_label("Your name").fill("Rita")
    page.get_by_label("E-mail or phone").fill("rita@example.com")
    page.get_by_label("Message for the team").fill("Call me about the leak")
    page.get_by_role("button", name="Send message").click()

    status.filter(has_text="Our team will get back to you").wait_for()
    assert chat.sent("handoff_leave_message") == [
        {
            "type": "handoff_leave_message",
            "name": "Rita",
            "contact": "rita@example.com",
            "message": "Call me about the leak",
        }
    ]
    assert tab.widget(".handoff__form").is_hidden()


def test_a_resumed_session_shows_the_handoff_it_is_in(demo, open_tab):
    chat = HandoffChat()
    original = chat._on_frame

    def resumed(socket, frame):
        if frame["type"] == "session_init":
            chat.received.append(frame)
            socket.send(
                json.dumps(
                    {
                        "type": "session",
                        "session_id": chat.session_id,
                        "resume_token": "token",
                        "resumed": True,
                        "status": "active",
                        "history": [],
                        "handoff": {"state": "active", "agent": {"name": "Bruno"}},
                    }
                )
            )
        else:
            original(socket, frame)

    chat._on_frame = resumed
    tab = routed_tab(open_tab, demo, chat)

    tab.widget(".handoff__status").filter(has_text="You are talking with Bruno.").wait_for()
    assert tab.widget(".handoff__request").is_hidden()


def test_the_handoff_banners_pass_axe(demo, open_tab):
    chat = HandoffChat(
        on_request={"type": "handoff", "state": "unavailable", "opens_at": "2026-12-14T12:00:00Z"}
    )
    tab = routed_tab(open_tab, demo, chat)
    tab.page.get_by_role("button", name="Talk to a person").click()
    tab.widget(".handoff__form").wait_for()
    chat.agent_says("Earlier reply")
    tab.widget(".msg--agent").wait_for()

    assert axe_violations(tab.page, "sophie-chat") == []


def test_pt_br_banners(demo, open_tab):
    chat = HandoffChat()
    tab = open_tab(demo.url, locale="pt-BR")
    tab.page.route_web_socket(CHAT_SOCKET, chat)
    tab.open().wait_online()

    tab.widget(".handoff__request").click()

    tab.widget(".handoff__status").filter(has_text="Você é o número 2 da fila").wait_for()


def test_in_the_demo_asking_in_portuguese_brings_the_waiting_banner(demo, open_tab):
    """The real demo server (offline model): the phrase asks for a person, every
    word of it answered without a model, and the visitor can stop waiting."""
    tab = open_tab(demo.url, locale="pt-BR").open().wait_online()

    tab.ask("Quero falar com um atendente")

    answer = tab.wait_answers(1)
    assert "Estou chamando uma pessoa da nossa equipe" in answer.inner_text()
    status = tab.widget(".handoff__status")
    status.filter(has_text="Aguardando uma pessoa da nossa equipe").wait_for()
    assert "número" in status.inner_text()
    tab.page.get_by_role("button", name="Parar de esperar").click()
    status.filter(has_text="Você parou de esperar").wait_for()
    assert tab.widget(".handoff__request").is_visible()
    assert tab.console_errors == []


def test_a_thumbs_down_offers_a_person_once(demo, open_tab):
    chat = HandoffChat()
    tab = routed_tab(open_tab, demo, chat)
    tab.ask("Why was I charged twice?")
    sophie_answers(chat, "Payments are taken when the job is done.")
    answer = tab.wait_answers(1)

    answer.locator(".feedback--down").click()

    offer = tab.widget(".notice").filter(has_text="Would you rather talk to a person")
    offer.wait_for()
    offer.get_by_role("button", name="Talk to a person").click()
    tab.widget(".handoff__status").filter(has_text="in line").wait_for()
    assert len(chat.sent("handoff_request")) == 1
    assert tab.widget(".notice__action").count() == 0
