"""A visitor's conversation in Chromium: asking, streaming, reloads, tabs, restarts, offline."""

from __future__ import annotations

import json
import re
import time

import pytest

from tests.support.browser import TIMEOUT_MS
from tests.support.demo import demo_server
from tests.support.services import PrivateRedis

pytestmark = pytest.mark.browser

#: The chat's WebSocket, for the tests that route it through a stand-in.
CHAT_SOCKET = re.compile(r"/ws/chat/")

SLOW_REPLY = (
    "Sure! A **standard cleaning** takes about three hours for a two-bedroom flat, "
    "and the cleaner brings the products if you ask when booking. A deep cleaning "
    "takes a whole day, so book it for a morning."
)


def test_demo_answers_a_question_from_its_knowledge_with_sources(demo, open_tab):
    tab = open_tab(demo.url).open()

    tab.ask("Which payment methods do you accept?")
    answer = tab.wait_answers(1)

    assert tab.texts(tab.user_messages()) == ["Which payment methods do you accept?"]
    text = answer.locator(".msg__text").inner_text()
    assert "Pix" in text
    assert "Credit card" in text
    # The knowledge entry's Markdown list, rendered as a list.
    assert answer.locator(".msg__text li").count() == 3
    source = answer.locator(".msg__sources a").first
    assert source.get_attribute("href") == f"{demo.url}/help/payments/"
    assert tab.console_errors == []


def test_answer_streams_in_while_the_log_is_busy(model_demo, fake_openai, open_tab):
    fake_openai.queue(text=SLOW_REPLY, token_delay=0.08)
    tab = open_tab(model_demo.url).open()

    tab.ask("How long does a cleaning take, roughly?")

    streaming = tab.widget(".msg--assistant.msg--streaming .msg__text")
    streaming.filter(has_text="three hours").wait_for()
    partial = streaming.inner_text()
    busy = tab.log.get_attribute("aria-busy")
    answer = tab.wait_answers(1)
    final = answer.locator(".msg__text").inner_text().strip()
    assert busy == "true"
    assert tab.log.get_attribute("aria-busy") == "false"
    # Seen part-way: the beginning of the answer, already formatted.
    assert final.startswith(partial.strip())
    assert len(partial.strip()) < len(final)
    assert final == SLOW_REPLY.replace("**", "")
    assert answer.locator(".msg__text strong").inner_text() == "standard cleaning"


def test_typing_indicator_shows_until_the_answer_starts(model_demo, fake_openai, open_tab):
    fake_openai.queue(text="Here I am.", ttft=0.8)
    tab = open_tab(model_demo.url).open()

    tab.ask("Are you there, Sophie?")

    typing = tab.widget(".typing")
    typing.wait_for(state="visible")
    assert "Sophie is typing" in typing.inner_text()
    tab.wait_answers(1)
    assert typing.is_hidden()


def test_reload_restores_the_conversation(demo, open_tab):
    tab = open_tab(demo.url).open()
    tab.ask("How do I cancel a booking?")
    tab.wait_answers(1)

    tab.page.reload()

    # The panel stays open across pages of one visit, and the history comes back.
    tab.wait_online()
    tab.widget(".msg--user").first.wait_for()
    assert tab.texts(tab.user_messages()) == ["How do I cancel a booking?"]
    assert "My bookings" in tab.texts(tab.answers())[0]


def test_history_follows_the_visitor_to_another_page(demo, open_tab):
    tab = open_tab(demo.url).open()
    tab.ask("Which cities do you cover?")
    tab.wait_answers(1)

    tab.page.goto(f"{demo.url}/services/plumbing/")

    tab.widget(".msg--assistant[data-id]").first.wait_for()
    assert "Curitiba" in tab.texts(tab.answers())[0]


def test_two_tabs_of_one_visitor_show_the_same_conversation(demo, open_tab, browser_context):
    context = browser_context()
    first = open_tab(demo.url, context=context).open()
    first.ask("Is the work guaranteed?")
    first.wait_answers(1)
    second = open_tab(f"{demo.url}/services/", context=context).open()
    second.wait_answers(1)

    # A question in the second tab, and its answer, appear in the first one too.
    second.ask("How do refunds work?")
    second.wait_answers(2)
    first.wait_answers(2)

    for tab in (first, second):
        assert tab.texts(tab.user_messages()) == ["Is the work guaranteed?", "How do refunds work?"]
        answers = tab.texts(tab.answers())
        assert "90-day" in answers[0]
        assert "full refund" in answers[1]


def test_conversation_goes_on_after_the_server_restarts(own_demo, open_tab):
    tab = open_tab(own_demo.url).open()
    tab.ask("How do I reschedule a booking?")
    tab.wait_answers(1)

    own_demo.stop()
    tab.widget('.panel[data-connection="reconnecting"]').wait_for()
    assert tab.status.inner_text() == "Reconnecting…"
    # Typed while the server is down: kept, and sent once it is back.
    tab.ask("How do I cancel a booking?")
    tab.widget('.msg--user[data-state="queued"]').wait_for()
    own_demo.start()

    tab.wait_online()
    tab.wait_answers(2)
    assert tab.texts(tab.user_messages()) == [
        "How do I reschedule a booking?",
        "How do I cancel a booking?",
    ]
    assert "Cancel" in tab.texts(tab.answers())[1]
    # Both turns are in the same stored conversation, each message once.
    assert own_demo.query(
        "SELECT COUNT(DISTINCT session_id), COUNT(*) FROM sophie_chat_chatmessage"
        " WHERE role = 'user'"
    ) == [(1, 2)]


def test_refused_connection_is_not_retried(limited_demo, open_tab, browser_context):
    context = browser_context()
    open_tab(limited_demo.url, context=context).open().wait_online()
    second = open_tab(f"{limited_demo.url}/services/", context=context)
    sockets = []
    second.page.on("websocket", lambda socket: sockets.append(socket.url))

    second.open()  # one connection per visitor: this one is closed with 4429

    second.widget('.panel[data-connection="offline"]').wait_for()
    # The server said why, before closing; the widget shows it.
    assert "Too many open chat windows" in second.widget(".notice").inner_text()
    time.sleep(1.6)  # longer than the first backoff delay (at most 1 s)
    assert len(sockets) == 1


@pytest.mark.parametrize("close_code", [1000, 1006])
def test_refused_connection_is_not_retried_when_a_proxy_loses_the_close_code(
    limited_demo, open_tab, browser_context, close_code
):
    context = browser_context()
    open_tab(limited_demo.url, context=context).open().wait_online()
    second = open_tab(f"{limited_demo.url}/services/", context=context)
    sockets = []

    def lossy_proxy(socket):
        # Frames pass both ways; the server's close code 4429 does not.
        sockets.append(socket.url)
        server = socket.connect_to_server()
        server.on_close(lambda code, reason: socket.close(code=close_code))

    second.page.route_web_socket(CHAT_SOCKET, lossy_proxy)

    second.open()

    second.widget('.panel[data-connection="offline"]').wait_for()
    assert "Too many open chat windows" in second.widget(".notice").inner_text()
    time.sleep(1.6)  # longer than the first backoff delay (at most 1 s)
    assert len(sockets) == 1


def test_forbidden_frame_is_final_even_with_a_normal_close(demo, open_tab):
    tab = open_tab(demo.url)
    sockets = []

    def refusing_server(socket):
        # A server (or a proxy in front of it) that says why, then closes normally.
        sockets.append(socket.url)
        socket.send(json.dumps({"type": "error", "code": "forbidden", "message": "Log in first."}))
        socket.close(code=1000)

    tab.page.route_web_socket(CHAT_SOCKET, refusing_server)

    tab.open()

    tab.widget('.panel[data-connection="offline"]').wait_for()
    assert "Log in first." in tab.widget('.notice[data-code="forbidden"]').inner_text()
    tab.ask("Can I book a cleaning?")
    tab.widget('.msg--user[data-state="failed"]').wait_for()
    time.sleep(1.6)  # longer than the first backoff delay (at most 1 s)
    assert len(sockets) == 1


def test_message_typed_offline_is_sent_once_back_online(demo, open_tab, browser_context):
    context = browser_context()
    tab = open_tab(demo.url, context=context).open().wait_online()

    context.set_offline(True)
    tab.widget('.panel[data-connection="offline"]').wait_for()
    tab.ask("Do you offer plumbing services?")
    queued = tab.widget('.msg--user[data-state="queued"]')
    queued.wait_for()
    assert "Waiting for the connection" in queued.inner_text()

    context.set_offline(False)
    tab.wait_answers(1)
    assert tab.widget('.msg--user[data-state="sent"]').count() == 1
    (count,) = demo.query(
        "SELECT COUNT(*) FROM sophie_chat_chatmessage WHERE content = ?",
        "Do you offer plumbing services?",
    )
    assert count == (1,)


def test_rate_limit_shows_a_countdown_and_holds_the_send_button(limited_demo, open_tab):
    tab = open_tab(limited_demo.url).open()
    tab.ask("How do I book a service?")
    tab.wait_answers(1)

    tab.ask("And how do I pay?")

    notice = tab.widget('.notice[data-code="rate_limited"]')
    countdown = notice.locator(".notice__countdown")
    countdown.wait_for()
    first = countdown.inner_text()
    assert tab.widget(".send").is_disabled()
    time.sleep(1.2)
    second = countdown.inner_text()
    assert "You can send again in" in first
    assert _seconds(second) < _seconds(first)
    assert tab.widget('.msg--user[data-state="failed"]').count() == 1


def test_message_refused_while_the_limiter_is_down_is_sent_again_by_itself(
    demo_template, tmp_path, open_tab
):
    redis = PrivateRedis(tmp_path)
    redis.start()
    server = demo_server(
        "limiter", demo_template, tmp_path, limiter_redis_url=redis.url(0)
    )
    try:
        tab = open_tab(server.url).open()
        tab.ask("How do I book a service?")
        tab.wait_answers(1)

        redis.stop()
        tab.ask("And how do I pay?")
        notice = tab.widget('.notice[data-code="service_unavailable"]')
        notice.locator(".notice__countdown").wait_for()
        assert "trouble on our side" in notice.inner_text()
        assert tab.widget('.msg--user[data-state="failed"]').count() == 1
        redis.start()

        # After retry_after, the same message goes again, unasked, and is answered once.
        answer = tab.wait_answers(2)
        assert "Pix" in answer.locator(".msg__text").inner_text()
        assert notice.count() == 0
        assert tab.widget('.msg--user[data-state="failed"]').count() == 0
        assert server.query(
            "SELECT COUNT(*) FROM sophie_chat_chatmessage WHERE content = ?",
            "And how do I pay?",
        ) == [(1,)]
        assert tab.console_errors == []
    finally:
        server.stop()
        redis.stop()


def _seconds(text: str) -> int:
    return int("".join(ch for ch in text if ch.isdigit()))


def test_counter_appears_near_the_length_limit(demo, open_tab):
    tab = open_tab(demo.url).open().wait_online()
    counter = tab.widget(".counter")

    tab.input.fill("a" * 1000)
    assert counter.is_hidden()
    tab.input.fill("a" * 1900)
    assert counter.inner_text() == "1,900 / 2,000"
    tab.input.fill("a" * 2100)  # the box stops at the limit

    assert counter.inner_text() == "2,000 / 2,000"
    assert tab.input.input_value() == "a" * 2000


def test_enter_sends_and_shift_enter_starts_a_new_line(demo, open_tab):
    tab = open_tab(demo.url).open()

    tab.input.press_sequentially("How do I book")
    tab.input.press("Shift+Enter")
    tab.input.press_sequentially("a cleaning?")
    assert tab.user_messages().count() == 0
    tab.input.press("Enter")

    tab.wait_answers(1)
    assert tab.texts(tab.user_messages()) == ["How do I book\na cleaning?"]
    assert tab.input.input_value() == ""


def test_suggestion_buttons_ask_their_question(demo, open_tab):
    tab = open_tab(demo.url).open()

    tab.widget(
        ".suggestion",
    ).filter(has_text="How do I book a service?").click()

    tab.wait_answers(1)
    assert tab.texts(tab.user_messages()) == ["How do I book a service?"]
    assert tab.widget(".suggestions").is_hidden()


def test_unread_badge_when_an_answer_arrives_while_closed(model_demo, fake_openai, open_tab):
    fake_openai.queue(text="Done: it's on its way.", ttft=0.6)
    tab = open_tab(model_demo.url).open()
    tab.ask("Can you hurry?")
    tab.widget('.msg--user[data-state="sent"]').wait_for()

    tab.input.press("Escape")  # nothing to rate yet: closes at once
    tab.widget(".launcher[data-unread]").wait_for(timeout=TIMEOUT_MS)

    assert "New message" in tab.launcher.get_attribute("aria-label")
    tab.open()
    assert tab.widget(".launcher[data-unread]").count() == 0
