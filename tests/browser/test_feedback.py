"""Thumbs up/down on answers, and the 1-5 satisfaction prompt when the visitor closes."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser


def stored_rating(server, answer) -> list[tuple]:
    return server.query(
        "SELECT rating FROM sophie_chat_messagefeedback WHERE message_id = ?",
        answer.get_attribute("data-id").replace("-", ""),
    )


def test_thumbs_up_is_stored_and_shown_pressed(demo, open_tab):
    tab = open_tab(demo.url).open()
    tab.ask("How do I book a service?")
    answer = tab.wait_answers(1)

    answer.get_by_role("button", name="Helpful", exact=True).click()

    answer.locator('.feedback--up[aria-pressed="true"]').wait_for()
    assert answer.locator(".feedback--down").get_attribute("aria-pressed") == "false"
    assert stored_rating(demo, answer) == [("up",)]


def test_changing_a_rating_replaces_it(demo, open_tab):
    tab = open_tab(demo.url).open()
    tab.ask("How are providers vetted?")
    answer = tab.wait_answers(1)
    answer.get_by_role("button", name="Helpful", exact=True).click()
    answer.locator('.feedback--up[aria-pressed="true"]').wait_for()

    answer.get_by_role("button", name="Not helpful").click()

    answer.locator('.feedback--down[aria-pressed="true"]').wait_for()
    assert answer.locator(".feedback--up").get_attribute("aria-pressed") == "false"
    assert stored_rating(demo, answer) == [("down",)]


def test_rating_is_still_shown_after_a_reload(demo, open_tab):
    tab = open_tab(demo.url).open()
    tab.ask("How do refunds work?")
    tab.wait_answers(1).get_by_role("button", name="Not helpful").click()
    tab.widget('.feedback--down[aria-pressed="true"]').wait_for()

    tab.page.reload()

    tab.widget('.msg--assistant[data-id] .feedback--down[aria-pressed="true"]').wait_for()


def test_closing_after_a_conversation_asks_for_a_score_and_stores_it(demo, open_tab):
    tab = open_tab(demo.url).open()
    tab.ask("Is the work guaranteed?")
    answer = tab.wait_answers(1)
    session_id = demo.session_of(answer.get_attribute("data-id"))

    tab.widget(".close").click()

    rating = tab.widget(".rating")
    rating.wait_for()
    assert "How was your conversation with Sophie?" in rating.inner_text()
    assert tab.widget(".composer").is_hidden()
    tab.page.get_by_role("button", name="4 out of 5").click()
    tab.widget(".rating__thanks").wait_for()
    tab.panel.wait_for(state="hidden")
    assert demo.query(
        "SELECT satisfaction_score FROM sophie_chat_chatsession WHERE id = ?", session_id
    ) == [(4,)]
    # Asked once per conversation.
    tab.open()
    tab.widget(".close").click()
    assert tab.panel.is_hidden()


def test_not_now_closes_and_is_not_asked_again(demo, open_tab):
    tab = open_tab(demo.url).open()
    tab.ask("Which cities do you cover?")
    answer = tab.wait_answers(1)
    tab.widget(".close").click()

    tab.page.get_by_role("button", name="Not now").click()

    assert tab.panel.is_hidden()
    tab.open()
    tab.ask("And Recife?")
    tab.wait_answers(2)
    tab.widget(".close").click()
    assert tab.panel.is_hidden()
    assert demo.query(
        "SELECT satisfaction_score FROM sophie_chat_chatsession WHERE id = ?",
        demo.session_of(answer.get_attribute("data-id")),
    ) == [(None,)]


def test_no_score_is_asked_before_the_visitor_says_anything(demo, open_tab):
    tab = open_tab(demo.url).open().wait_online()

    tab.widget(".close").click()

    assert tab.panel.is_hidden()
    assert tab.widget(".rating").is_hidden()
