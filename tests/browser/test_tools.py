"""Tools in the demo, for real: a scripted model calls Casa Pronta's tools, the visitor confirms.

The demo runs as ``make demo`` runs it with ``OPENAI_API_KEY`` set, its
model the fake OpenAI server scripted to call tools; the visitor is Ana,
logged in through the demo's login page, in Chromium, under the demo's
strict Content-Security-Policy. What the widget does with each frame, frame
by frame, is in test_tools_widget.py.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.utils import formats, translation

from tests.support.demo import DemoServer, demo_server

pytestmark = pytest.mark.browser


def next_friday_at_nine() -> str:
    today = datetime.date.today()
    friday = today + datetime.timedelta(days=(4 - today.weekday()) % 7 + 7)
    return f"{friday.isoformat()}T09:00"


def stored_utc(local: str) -> str:
    """A demo local time (America/Sao_Paulo) as SQLite stores it: UTC, "YYYY-MM-DD HH:MM"."""
    moment = datetime.datetime.fromisoformat(local).replace(tzinfo=ZoneInfo("America/Sao_Paulo"))
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%d %H:%M")


def booking(server: DemoServer, service: str) -> tuple[int, str, str]:
    """``(id, starts_at, status)`` of Ana's booking of ``service``, as stored."""
    ((row),) = server.query(
        "SELECT id, starts_at, status FROM demo_booking WHERE service = ?", service
    )
    return row


def logged_in_as_ana(open_tab, server: DemoServer, context=None):
    tab = open_tab(f"{server.url}/login/", context=context)
    tab.page.get_by_role("button", name="Log in as Ana").click()
    tab.page.wait_for_url(f"{server.url}/account/")
    return tab.open().wait_online()


def offered_tools(request: dict) -> list[str]:
    return [item["function"]["name"] for item in request["body"].get("tools", [])]


@pytest.fixture(scope="session")
def _short_confirm_demo(
    demo_template: Path, fake_openai_process, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DemoServer]:
    server = demo_server(
        "short-confirm",
        demo_template,
        tmp_path_factory.mktemp("demo-short-confirm"),
        model_url=fake_openai_process.url,
        confirm_timeout=2,
    )
    yield server
    server.stop()


@pytest.fixture
def short_confirm_demo(_short_confirm_demo: DemoServer, fake_openai) -> DemoServer:
    """The demo with a model, whose confirmations lapse after 2 seconds."""
    return _short_confirm_demo


def test_a_visitor_moves_their_booking_by_keyboard_after_confirming(
    model_demo, fake_openai, open_tab
):
    from playwright.sync_api import expect

    booking_id, before, _status = booking(model_demo, "Deep cleaning")
    new_start = next_friday_at_nine()
    fake_openai.call_tools(
        ("reschedule_booking", {"booking_id": booking_id, "new_start": new_start})
    )
    fake_openai.queue(text="Done: your deep cleaning is now on Friday at 09:00.")
    tab = logged_in_as_ana(open_tab, model_demo)
    page = tab.page

    tab.input.focus()
    page.keyboard.type("Move my deep cleaning to next Friday at 9")
    page.keyboard.press("Enter")

    card = tab.widget(".confirm")
    expect(card).to_be_focused()
    with translation.override("en"):
        when = formats.date_format(datetime.datetime.fromisoformat(new_start), "DATETIME_FORMAT")
    assert card.locator(".confirm__summary").inner_text() == (
        f"Move booking {booking_id} to {when}"  # "... to Dec. 18, 2026, 9 a.m."
    )
    # Nothing changes while the visitor has not answered.
    assert booking(model_demo, "Deep cleaning")[1] == before
    page.keyboard.press("Tab")
    expect(tab.widget(".confirm__accept")).to_be_focused()
    page.keyboard.press("Enter")

    tab.widget('.confirm[data-outcome="accepted"]').wait_for()
    answer = tab.wait_answers(1)
    assert "now on Friday at 09:00" in answer.locator(".msg__text").inner_text()
    assert booking(model_demo, "Deep cleaning")[1].startswith(stored_utc(new_start))
    # The model got the tool's result back, and was offered only Ana's tools.
    first, second = fake_openai.chat_requests()
    assert "my_bookings" in offered_tools(first)
    assert second["body"]["messages"][-1]["role"] == "tool"
    assert tab.console_errors == []


def test_cancel_leaves_the_booking_as_it_was(model_demo, fake_openai, open_tab):
    booking_id, before, status = booking(model_demo, "Plumbing: kitchen tap")
    fake_openai.call_tools(("cancel_booking", {"booking_id": booking_id}))
    fake_openai.queue(text="All right, your plumbing visit stays as it was.")
    tab = logged_in_as_ana(open_tab, model_demo)
    tab.ask("Cancel my plumbing visit")

    summary = tab.widget(".confirm__summary")
    summary.wait_for()
    assert summary.inner_text().startswith(f"Cancel booking {booking_id}. Free up to 24 hours")
    tab.page.get_by_role("button", name="Cancel", exact=True).click()

    tab.widget('.confirm[data-outcome="declined"]').wait_for()
    assert "stays as it was" in tab.wait_answers(1).locator(".msg__text").inner_text()
    assert booking(model_demo, "Plumbing: kitchen tap") == (booking_id, before, status)
    assert tab.console_errors == []


def test_the_other_tab_sees_the_request_closed(model_demo, fake_openai, open_tab, browser_context):
    booking_id, _before, _status = booking(model_demo, "Electrical repair: shower")
    new_start = next_friday_at_nine().replace("T09", "T14")
    fake_openai.call_tools(
        ("reschedule_booking", {"booking_id": booking_id, "new_start": new_start})
    )
    fake_openai.queue(text="Moved.")
    context = browser_context()
    first = logged_in_as_ana(open_tab, model_demo, context=context)
    second = open_tab(f"{model_demo.url}/services/", context=context).open().wait_online()

    first.ask("Move the shower repair to Friday at 2 pm")
    second.widget(".confirm__accept").wait_for()
    second.widget(".confirm__accept").click()

    for tab in (first, second):
        card = tab.widget('.confirm[data-outcome="accepted"]')
        card.wait_for()
        assert card.locator("button").count() == 0
        tab.wait_answers(1)
    assert booking(model_demo, "Electrical repair: shower")[1].startswith(stored_utc(new_start))


def test_an_unanswered_request_expires_and_changes_nothing(
    short_confirm_demo, fake_openai, open_tab
):
    booking_id, before, status = booking(short_confirm_demo, "Deep cleaning")
    fake_openai.call_tools(("cancel_booking", {"booking_id": booking_id}))
    fake_openai.queue(text="I did not cancel anything: the request expired.")
    tab = logged_in_as_ana(open_tab, short_confirm_demo)
    tab.ask("Cancel my deep cleaning")
    tab.widget(".confirm__accept").wait_for()

    card = tab.widget('.confirm[data-outcome="expired"]')
    card.wait_for()

    assert card.locator("button").count() == 0
    assert card.locator(".confirm__status").inner_text() == (
        "This request expired. Nothing was changed."
    )
    tab.wait_answers(1)
    assert booking(short_confirm_demo, "Deep cleaning") == (booking_id, before, status)


def test_a_running_tool_is_announced_with_its_label_and_then_ends(
    model_demo, fake_openai, open_tab
):
    fake_openai.call_tools(("my_bookings", {}))
    fake_openai.queue(text="Your next visit is the deep cleaning.")
    tab = logged_in_as_ana(open_tab, model_demo)
    frames: list[dict] = []

    def watch(socket):
        socket.on("framereceived", lambda payload: frames.append(json.loads(payload)))

    tab.page.on("websocket", watch)
    # A new socket to watch: the page's own was opened before the listener.
    tab.page.reload()
    tab.open().wait_online()

    tab.ask("When is my next visit?")
    answer = tab.wait_answers(1)

    (start,) = [frame for frame in frames if frame["type"] == "tool_start"]
    (end,) = [frame for frame in frames if frame["type"] == "tool_end"]
    assert (start["name"], start["label"]) == ("my_bookings", "Looking up your bookings…")
    assert (end["call_id"], end["status"]) == (start["call_id"], "ok")
    assert start["message_id"] == answer.get_attribute("data-id")
    # Said to screen readers; gone from the answer once the tool ended.
    tab.widget(".panel > .sr-only[role=status]").filter(
        has_text="Looking up your bookings…"
    ).wait_for(state="attached")
    assert tab.widget(".msg__tool").count() == 0
    assert "deep cleaning" in answer.locator(".msg__text").inner_text()


def test_an_anonymous_visitor_is_offered_no_booking_tools(model_demo, fake_openai, open_tab):
    tab = open_tab(model_demo.url).open().wait_online()

    tab.ask("When is my cleaning?")
    tab.wait_answers(1)

    (request,) = fake_openai.chat_requests()
    # request_handoff: the demo has handoff on (a person, for anyone).
    assert offered_tools(request) == ["search_services", "capture_lead", "request_handoff"]
    # welcome.features.tools: the site has tools, and the widget knows it.
    assert tab.panel.get_attribute("data-tools") == ""


def test_the_offline_demo_says_it_has_no_tools(demo, open_tab):
    tab = open_tab(demo.url).open().wait_online()

    assert tab.panel.get_attribute("data-tools") is None


def test_a_visitor_leaves_a_quote_request_after_confirming_it(model_demo, fake_openai, open_tab):
    preferred_day = datetime.date.today() + datetime.timedelta(days=10)
    preferred = preferred_day.isoformat()
    with translation.override("en"):
        shown = formats.date_format(preferred_day)  # as the visitor reads it: "Dec. 16, 2026"
    fake_openai.call_tools(
        (
            "capture_lead",
            {
                "service": "Paint two rooms",
                "neighbourhood": "Batel",
                "preferred_date": preferred,
                "name": "Bruna Dias",
                "phone": "+55 41 98888-7777",
            },
        )
    )
    fake_openai.queue(text="Thanks, Bruna! Our team will call you about the painting.")
    tab = open_tab(model_demo.url).open().wait_online()
    tab.ask("I'd like a quote to paint two rooms in Batel. I'm Bruna, +55 41 98888-7777")

    summary = tab.widget(".confirm__summary")
    summary.wait_for()
    assert summary.inner_text().splitlines() == [
        "Send these details to our team so they can contact you:",
        "Service: Paint two rooms",
        "Neighbourhood: Batel",
        f"Preferred date: {shown}",
        "Name: Bruna Dias",
        "Phone: +55 41 98888-7777",
    ]
    assert model_demo.query("SELECT COUNT(*) FROM sophie_chat_lead WHERE name = 'Bruna Dias'") == [
        (0,)
    ]
    tab.widget(".confirm__accept").click()

    tab.widget('.confirm[data-outcome="accepted"]').wait_for()
    answer = tab.wait_answers(1)
    assert "Our team will call you" in answer.locator(".msg__text").inner_text()
    ((service, phone, session_id),) = model_demo.query(
        "SELECT service, phone, session_id FROM sophie_chat_lead WHERE name = 'Bruna Dias'"
    )
    assert (service, phone) == ("Paint two rooms", "+55 41 98888-7777")
    assert session_id == model_demo.session_of(answer.get_attribute("data-id"))


def test_another_tab_reloaded_while_waiting_shows_the_request_again(
    model_demo, fake_openai, open_tab, browser_context
):
    booking_id, _before, _status = booking(model_demo, "Plumbing: kitchen tap")
    fake_openai.call_tools(("cancel_booking", {"booking_id": booking_id}))
    fake_openai.queue(text="Fine, the plumbing visit stays.")
    context = browser_context()
    asking = logged_in_as_ana(open_tab, model_demo, context=context)
    other = open_tab(f"{model_demo.url}/services/", context=context).open().wait_online()
    asking.ask("Cancel the plumbing visit")
    waiting = other.widget(".confirm").get_attribute("data-confirmation-id")

    other.page.reload()

    other.wait_online()
    card = other.widget(".confirm")
    card.locator(".confirm__decline").wait_for()
    assert card.count() == 1
    assert card.get_attribute("data-confirmation-id") == waiting
    card.locator(".confirm__decline").click()
    for tab in (asking, other):
        tab.widget('.confirm[data-outcome="declined"]').wait_for()
    assert "stays" in asking.wait_answers(1).locator(".msg__text").inner_text()
