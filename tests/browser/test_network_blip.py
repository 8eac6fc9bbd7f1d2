"""An answer survives a network blip in Chromium: the network cut mid-answer and restored,
the bubble ends with the whole answer, once (docs/protocol.md, "Resuming mid-answer")."""

from __future__ import annotations

import time

import pytest

pytestmark = pytest.mark.browser

REPLY = (
    "A standard cleaning takes about three hours for a two-bedroom flat, and the "
    "cleaner brings the products if you ask when booking. A deep cleaning takes a "
    "whole day, so book it for a morning and leave the keys with a neighbour."
)


def test_answer_cut_off_by_the_network_ends_whole_and_once_when_it_is_back(
    model_demo, fake_openai, browser_context, open_tab
):
    fake_openai.queue(text=REPLY, token_delay=0.1)
    context = browser_context()
    tab = open_tab(model_demo.url, context=context).open().wait_online()

    tab.ask("How long does a cleaning take?")
    streaming = tab.widget(".msg--assistant.msg--streaming .msg__text")
    streaming.filter(has_text="three hours").wait_for()
    context.set_offline(True)
    tab.widget('.panel[data-connection="offline"]').wait_for()
    cut_at = tab.widget(".msg--assistant[data-id] .msg__text").last.inner_text()
    time.sleep(0.5)  # the server writes on meanwhile
    context.set_offline(False)

    # Back online: the bubble shows the answer so far and streams the rest live.
    streaming.filter(has_text="book it for a morning").wait_for()
    answer = tab.wait_answers(1)
    final = answer.locator(".msg__text").inner_text().strip()
    assert cut_at.strip()
    assert final.startswith(cut_at.strip())
    assert final == REPLY
    assert tab.answers().count() == 1
    assert len(fake_openai.chat_requests()) == 1
    stored = model_demo.query(
        "SELECT content, status FROM sophie_chat_chatmessage WHERE id = ?",
        answer.get_attribute("data-id").replace("-", ""),
    )
    assert stored == [(REPLY, "complete")]
    assert tab.console_errors == []
