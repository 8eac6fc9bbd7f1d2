"""Hostile text runs nothing, and the widget needs nothing a strict CSP forbids.

The hostile-text tests turn the page's Content-Security-Policy off
(``bypass_csp``): the demo's policy would block inline handlers anyway, and
the point is that the widget never builds markup from text in the first place.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser

HOSTILE_USER_TEXT = (
    '<img src=x onerror="window.__pwned = 1"> <script>window.__pwned = 2</script> '
    "[click me](javascript:window.__pwned=3) **not bold for you**"
)

HOSTILE_MODEL_TEXT = (
    "Hello <img src=x onerror=\"window.__pwned='img'\"> and "
    "<script>window.__pwned='script'</script>\n\n"
    "- [click me](javascript:window.__pwned='link')\n"
    "- [data link](data:text/html,<script>alert(1)</script>)\n"
    "- <a href=\"javascript:window.__pwned='a'\">raw anchor</a>\n"
    "- [plain http](http://example.com/insecure)\n\n"
    "<iframe src=\"javascript:window.__pwned='iframe'\"></iframe> "
    "**Bold** and [a safe page](https://example.com/ok) or "
    "[write to us](mailto:help@example.com)."
)


def watch_dialogs(page) -> list[str]:
    dialogs: list[str] = []

    def _dismiss(dialog):
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", _dismiss)
    return dialogs


def test_hostile_markup_in_a_visitors_message_is_shown_as_text(demo, open_tab):
    tab = open_tab(demo.url, bypass_csp=True).open()
    dialogs = watch_dialogs(tab.page)

    tab.ask(HOSTILE_USER_TEXT)
    tab.widget('.msg--user[data-state="sent"]').wait_for()
    tab.wait_answers(1)

    message = tab.user_messages().first.locator(".msg__text")
    assert message.inner_text() == HOSTILE_USER_TEXT
    assert message.locator("img, script, a, strong").count() == 0
    assert tab.page.evaluate("() => window.__pwned") is None
    assert dialogs == []


def test_hostile_model_text_runs_nothing_and_keeps_only_safe_links(
    model_demo, fake_openai, open_tab
):
    fake_openai.queue(text=HOSTILE_MODEL_TEXT, token_delay=0.005)
    tab = open_tab(model_demo.url, bypass_csp=True).open()
    dialogs = watch_dialogs(tab.page)

    tab.ask("Please say something dangerous (just this once).")
    answer = tab.wait_answers(1).locator(".msg__text")

    text = answer.inner_text()
    # Raw HTML stays text, exactly as the model wrote it.
    assert "<img src=x onerror=\"window.__pwned='img'\">" in text
    assert "<script>window.__pwned='script'</script>" in text
    assert "<a href=\"javascript:window.__pwned='a'\">raw anchor</a>" in text
    assert answer.locator("img, script, iframe, object, embed, svg").count() == 0
    # Links to anything but https: and mailto: keep their words and lose their target.
    assert "click me" in text
    assert "data link" in text
    assert "plain http" in text
    links = answer.locator("a")
    hrefs = [links.nth(i).get_attribute("href") for i in range(links.count())]
    assert hrefs == ["https://example.com/ok", "mailto:help@example.com"]
    safe = answer.get_by_role("link", name="a safe page")
    assert safe.get_attribute("rel") == "noopener noreferrer"
    assert safe.get_attribute("target") == "_blank"
    assert answer.locator("strong").inner_text() == "Bold"
    # Nothing ran, now or on a click.
    answer.get_by_text("click me").click()
    assert tab.page.evaluate("() => window.__pwned") is None
    assert dialogs == []


@pytest.mark.django_csp
def test_strict_csp_page_has_no_console_errors(model_demo, fake_openai, open_tab):
    fake_openai.queue(text="All good: **no** inline code needed.")
    response_headers: dict[str, str] = {}
    tab = open_tab(model_demo.url)
    response = tab.page.reload()
    response_headers.update(response.headers)

    policy = response_headers.get("content-security-policy", "")
    assert "script-src 'self' 'nonce-" in policy
    assert "style-src 'self'" in policy
    assert "unsafe-inline" not in policy
    assert "unsafe-eval" not in policy
    tab.open()
    tab.ask("Does the chat work under a strict policy?")
    answer = tab.wait_answers(1)
    answer.locator(".feedback--up").click()
    answer.locator('.feedback--up[aria-pressed="true"]').wait_for()

    # Its stylesheet loaded: the launcher is drawn as a round button.
    assert tab.launcher.evaluate("el => getComputedStyle(el).borderRadius") == "50%"
    assert tab.console_errors == []
