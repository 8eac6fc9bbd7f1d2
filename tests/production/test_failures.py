"""What visitors see when Redis or PostgreSQL fails under two server processes.

The processes run the production settings of docs/deployment.md on a
private ``redis-server`` (channel layer, turn locks, rate limiter), a second
private ``redis-server`` for cached answers (``REDIS_CACHE_URL``), and a
private PostgreSQL cluster; the tests stop, pause and restart those, never
the machine's own. Each test leaves every service running (``services_up``).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from tests.support.openai_server import MODEL_REPLY
from tests.support.topology import DB_FAILURE_MARK
from tests.support.websocket import ChatClient, dumps, frame_types

pytestmark = [pytest.mark.multiprocess, pytest.mark.server]



async def wait_until_tabs_see_each_other(sender: ChatClient, watcher: ChatClient) -> None:
    """Send typing from ``sender`` until ``watcher`` gets it (the layer and its groups are back)."""
    deadline = time.monotonic() + 15
    while True:
        await sender.send({"type": "typing", "is_typing": True})
        try:
            async with asyncio.timeout(0.3):
                while (await watcher.receive())["type"] != "typing":
                    pass
        except TimeoutError:
            assert time.monotonic() < deadline, "tabs never saw each other again"
            continue
        await sender.send({"type": "typing", "is_typing": False})
        await watcher.receive_until("typing")
        return


def history(session: dict[str, Any]) -> list[tuple[str, str]]:
    return [(m["role"], m["content"]) for m in session["history"]]


# -- Redis -----------------------------------------------------------------------


async def test_message_while_redis_is_down_is_refused_with_service_unavailable(
    services_up, open_chat, fake_openai
):
    tab_a, _tab_b, session = await services_up.two_tabs(open_chat)
    services_up.redis.stop()

    frames = await tab_a.ask("Do you clean windows?", "down-1")

    error = frames[-1]
    assert error["type"] == "error", dumps(frames)
    assert error["code"] == "service_unavailable"
    assert error["retry_after"] > 0
    assert error["reply_to"] == "down-1"
    assert fake_openai.chat_requests() == []
    assert services_up.messages(session["session_id"]) == []


async def test_connections_opened_while_redis_is_down_start_a_conversation(
    services_up, open_chat, fake_openai
):
    services_up.redis.stop()
    for server in services_up.servers:
        tab, welcome = await open_chat(server)
        assert welcome["type"] == "welcome"
        session = await tab.start()
        assert session["type"] == "session", dumps([session])


async def test_conversation_goes_on_after_redis_restarts_with_history_intact_and_no_duplicates(
    services_up, open_chat, fake_openai
):
    tab_a, tab_b, session = await services_up.two_tabs(open_chat)
    await tab_a.ask("Can you assemble furniture?", "r-1")
    await tab_b.receive_until("stream_end")
    services_up.redis.stop()
    refused = await tab_a.ask("Do you bring the tools?", "r-2")
    assert refused[-1]["code"] == "service_unavailable", dumps(refused)

    services_up.redis.start()
    await wait_until_tabs_see_each_other(tab_a, tab_b)
    resent = await tab_a.ask("Do you bring the tools?", "r-2")
    relayed = await tab_b.receive_until("stream_end")
    replayed = await tab_a.ask("Can you assemble furniture?", "r-1")

    assert resent[-1]["type"] == "stream_end", dumps(resent)
    assert [f for f in relayed if f["type"] in ("message", "stream_end")] == [
        resent[0],
        resent[-1],
    ]
    assert replayed[-1]["type"] == "stream_end"
    assert len(fake_openai.chat_requests()) == 2
    expected = [
        ("user", "Can you assemble furniture?"),
        ("assistant", MODEL_REPLY),
        ("user", "Do you bring the tools?"),
        ("assistant", MODEL_REPLY),
    ]
    assert services_up.messages(session["session_id"]) == expected
    newcomer, _ = await open_chat(services_up.servers[1])
    assert history(await newcomer.start(resume_token=session["resume_token"])) == expected


async def test_tabs_on_both_processes_see_each_other_again_after_redis_restarts(
    services_up, open_chat, fake_openai
):
    tab_a, tab_b, _session = await services_up.two_tabs(open_chat)
    services_up.redis.stop()
    services_up.redis.start()
    await wait_until_tabs_see_each_other(tab_a, tab_b)

    asked = await tab_b.ask("Do you fix fridges?", "back-1")
    seen = await tab_a.receive_until("stream_end")

    assert [f for f in seen if f["type"] in ("message", "stream_end")] == [asked[0], asked[-1]]


# -- the answer cache ------------------------------------------------------------


async def test_chat_answers_while_the_answer_cache_is_down(services_up, open_chat, fake_openai):
    first, second = services_up.servers
    visitor_1, _ = await open_chat(first)
    await visitor_1.start()
    first_answer = await visitor_1.ask("Do you offer gift cards?", "gift-1")
    assert first_answer[-1]["type"] == "stream_end", dumps(first_answer)
    services_up.answers_redis.stop()
    visitor_2, _ = await open_chat(second)
    await visitor_2.start()

    frames = await visitor_2.ask("Do you offer gift cards?", "gift-2")

    assert frames[-1]["type"] == "stream_end", dumps(frames)
    assert frames[-1]["message"]["metadata"]["cached"] is False
    assert frames[-1]["message"]["content"] == MODEL_REPLY
    assert len(fake_openai.chat_requests()) == 2


async def test_answer_cache_that_hangs_delays_an_answer_by_its_socket_timeouts_only(
    services_up, open_chat, fake_openai
):
    tab, _ = await open_chat(services_up.servers[0])
    await tab.start()
    services_up.answers_redis.pause()
    try:
        started = time.monotonic()
        frames = await tab.ask("Do you clean swimming pools?", "hang-1")
        took = time.monotonic() - started
    finally:
        services_up.answers_redis.resume()

    assert frames[-1]["type"] == "stream_end", dumps(frames)
    # A read and a write of the cache, each cut short by the 0.5 s socket timeout.
    assert took < 3, took


# -- PostgreSQL ------------------------------------------------------------------


async def test_database_error_storing_a_message_is_service_unavailable_and_the_next_works(
    services_up, open_chat, fake_openai
):
    tab, _ = await open_chat(services_up.servers[0])
    session = await tab.start()

    failed = await tab.ask(f"Please store this {DB_FAILURE_MARK}", "db-1")
    answered = await tab.ask("Do you clean offices?", "db-2")

    assert failed[-1]["type"] == "error", dumps(failed)
    assert failed[-1]["code"] == "service_unavailable"
    assert failed[-1]["reply_to"] == "db-1"
    assert failed[-1]["retry_after"] > 0
    assert frame_types(failed) == ["error"]
    assert answered[-1]["type"] == "stream_end", dumps(answered)
    [request] = fake_openai.chat_requests()
    assert DB_FAILURE_MARK not in str(request["body"])
    assert services_up.messages(session["session_id"]) == [
        ("user", "Do you clean offices?"),
        ("assistant", MODEL_REPLY),
    ]


async def test_message_while_postgresql_is_down_is_service_unavailable(
    services_up, open_chat, fake_openai
):
    tab, _ = await open_chat(services_up.servers[1])
    await tab.start()
    services_up.postgres.stop()

    frames = await tab.ask("Do you clean gutters?", "pg-down-1")

    assert frames[-1]["type"] == "error", dumps(frames)
    assert frames[-1]["code"] == "service_unavailable"
    assert frames[-1]["reply_to"] == "pg-down-1"
    assert fake_openai.chat_requests() == []


async def test_next_turn_works_on_every_process_after_postgresql_restarts(
    services_up, open_chat, fake_openai
):
    tabs = []
    for server in services_up.servers:
        tab, _ = await open_chat(server)
        await tab.start()
        await tab.ask(f"Do you repair roofs ({server.kind})?", "pg-1")
        tabs.append(tab)

    services_up.postgres.restart()

    for tab, server in zip(tabs, services_up.servers, strict=True):
        frames = await tab.ask(f"And gutters ({server.kind})?", "pg-2")
        assert frames[-1]["type"] == "stream_end", dumps(frames)
