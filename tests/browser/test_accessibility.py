"""Keyboard, screen-reader semantics, an axe-core audit, and small screens."""

from __future__ import annotations

import pytest

from tests.support.browser import axe_violations

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_open_widget_with_a_conversation_has_no_serious_axe_violations(demo, open_tab, scheme):
    tab = open_tab(demo.url, color_scheme=scheme).open()
    tab.ask("Which payment methods do you accept?")
    tab.wait_answers(1)

    assert axe_violations(tab.page) == []


def test_satisfaction_prompt_has_no_serious_axe_violations(demo, open_tab):
    tab = open_tab(demo.url).open()
    tab.ask("Is the work guaranteed?")
    tab.wait_answers(1)
    tab.widget(".close").click()
    prompt = tab.widget(".rating")
    prompt.wait_for()
    # It rises in from transparent: audited mid-way, its text would blend with the page.
    prompt.evaluate("el => Promise.all(el.getAnimations({subtree: true}).map(a => a.finished))")

    assert axe_violations(tab.page) == []


def test_widget_parts_have_roles_and_names(demo, open_tab):
    tab = open_tab(demo.url)
    page = tab.page

    launcher = page.get_by_role("button", name="Chat with Sophie")
    assert launcher.get_attribute("aria-expanded") == "false"
    launcher.click()

    assert launcher.get_attribute("aria-expanded") == "true"
    assert page.get_by_role("dialog", name="Chat with Sophie").is_visible()
    assert page.get_by_role("log", name="Conversation").get_attribute("aria-live") == "polite"
    assert page.get_by_role("textbox", name="Your message").is_visible()
    assert page.get_by_role("button", name="Send").is_visible()
    assert page.get_by_role("button", name="Close chat").is_visible()
    tab.wait_online()
    assert tab.status.get_attribute("role") == "status"
    assert tab.status.inner_text() == "Online"


def test_keyboard_alone_opens_asks_rates_and_closes(demo, open_tab):
    from playwright.sync_api import expect

    tab = open_tab(demo.url)
    page = tab.page
    tab.launcher.focus()

    page.keyboard.press("Enter")
    expect(tab.input).to_be_focused()
    page.keyboard.type("How do I reschedule a booking?")
    page.keyboard.press("Enter")
    answer = tab.wait_answers(1)
    expect(tab.input).to_be_focused()

    # The answer's thumbs are just before the message box.
    page.keyboard.press("Shift+Tab")
    expect(answer.locator(".feedback--down")).to_be_focused()
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Enter")
    answer.locator('.feedback--up[aria-pressed="true"]').wait_for()

    # Esc asks for a rating first; the stars take the focus; five is four Tabs away.
    page.keyboard.press("Escape")
    expect(tab.widget('.rating__star[data-score="1"]')).to_be_focused()
    for _ in range(4):
        page.keyboard.press("Tab")
    expect(tab.widget('.rating__star[data-score="5"]')).to_be_focused()
    page.keyboard.press("Enter")

    tab.panel.wait_for(state="hidden")
    expect(tab.launcher).to_be_focused()


def test_escape_closes_at_once_without_a_conversation(demo, open_tab):
    from playwright.sync_api import expect

    tab = open_tab(demo.url).open()

    tab.input.press("Escape")

    assert tab.panel.is_hidden()
    expect(tab.launcher).to_be_focused()


def test_narrow_viewport_opens_full_screen(demo, open_tab):
    tab = open_tab(
        demo.url,
        viewport={"width": 375, "height": 667},
        has_touch=True,
        reduced_motion="reduce",  # no opening animation to wait for
    ).open()

    box = tab.panel.bounding_box()
    assert box == {"x": 0, "y": 0, "width": 375, "height": 667}
    assert tab.launcher.is_hidden()
    tab.ask("Which cities do you cover?")
    tab.wait_answers(1)
    assert tab.input.bounding_box()["y"] + tab.input.bounding_box()["height"] <= 667
    tab.widget(".close").click()
    tab.widget(".rating__skip").click()
    assert tab.panel.is_hidden()
    assert tab.launcher.is_visible()


def test_wide_viewport_opens_a_floating_panel(demo, open_tab):
    tab = open_tab(demo.url).open()

    box = tab.panel.bounding_box()
    assert box["width"] < 420
    assert box["x"] + box["width"] < 1280
    assert tab.launcher.is_visible()
