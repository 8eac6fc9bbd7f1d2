"""Two server processes (uvicorn and daphne) on the machine's Redis and PostgreSQL.

Configured with the production settings of docs/deployment.md: a visitor
may use either process, and each sees the same conversations, limits and
cached answers. Each test talks from an address of its own
(``X-Forwarded-For``) and asks its own questions, since the processes, the
rate counters and the answer cache are shared by the whole module.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.openai_server import MODEL_REPLY
from tests.support.topology import SHARED_RATE
from tests.support.websocket import ChatClient, dumps, frame_types

pytestmark = [
    pytest.mark.multiprocess,
    pytest.mark.redis,
    pytest.mark.postgres,
    pytest.mark.server,
]


def contents(messages: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(m["role"], m["content"]) for m in messages]



async def ask_and_watch(
    sender: ChatClient, watcher: ChatClient, text: str, client_message_id: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Frames the sender gets up to its answer (or error), and those the watcher gets meanwhile."""
    sent = await sender.ask(text, client_message_id)
    seen = await watcher.receive_until("stream_end") if sent[-1]["type"] == "stream_end" else []
    return sent, seen


async def test_session_started_on_one_process_resumes_on_the_other_with_its_full_history(
    shared_topology, open_chat, fake_openai
):
    first, second = shared_topology.servers
    tab, _ = await open_chat(first)
    session = await tab.start()
    await tab.ask("How long does it take to clean a studio flat?", "resume-1")
    await tab.ask("And a three-bedroom house?", "resume-2")
    await tab.close()

    other, _ = await open_chat(second)
    resumed = await other.start(resume_token=session["resume_token"])

    assert resumed["resumed"] is True
    assert resumed["session_id"] == session["session_id"]
    assert contents(resumed["history"]) == [
        ("user", "How long does it take to clean a studio flat?"),
        ("assistant", MODEL_REPLY),
        ("user", "And a three-bedroom house?"),
        ("assistant", MODEL_REPLY),
    ]


async def test_conversation_resumed_on_the_other_process_goes_on_with_its_history(
    shared_topology, open_chat, fake_openai
):
    first, second = shared_topology.servers
    tab, _ = await open_chat(first)
    session = await tab.start()
    await tab.ask("Do you clean carpets?", "goes-on-1")
    await tab.close()
    other, _ = await open_chat(second)
    await other.start(resume_token=session["resume_token"])

    frames = await other.ask("How much does it cost?", "goes-on-2")

    assert frames[-1]["type"] == "stream_end", dumps(frames)
    prompt = fake_openai.chat_requests()[-1]["body"]["messages"]
    assert [(m["role"], m["content"]) for m in prompt if m["role"] != "system"] == [
        ("user", "Do you clean carpets?"),
        ("assistant", MODEL_REPLY),
        ("user", "How much does it cost?"),
    ]


@pytest.mark.parametrize("direction", ["uvicorn_to_daphne", "daphne_to_uvicorn"])
async def test_message_from_a_tab_on_one_process_appears_with_its_answer_in_a_tab_on_the_other(
    shared_topology, open_chat, fake_openai, direction
):
    tab_a, tab_b, _session = await shared_topology.two_tabs(open_chat)
    sender, watcher = (tab_a, tab_b) if direction == "uvicorn_to_daphne" else (tab_b, tab_a)

    question = f"Can you fix a leaking tap ({direction})?"
    sent, seen = await ask_and_watch(sender, watcher, question, "t-1")

    ack, answer = sent[0], sent[-1]
    assert ack["type"] == "message", dumps(sent)
    assert answer["type"] == "stream_end", dumps(sent)
    assert [f for f in seen if f["type"] in ("message", "stream_end")] == [ack, answer]
    assert answer["message"]["content"] == MODEL_REPLY


async def test_token_deltas_go_only_to_the_tab_that_asked(shared_topology, open_chat, fake_openai):
    tab_a, tab_b, _session = await shared_topology.two_tabs(open_chat)

    sent, seen = await ask_and_watch(tab_a, tab_b, "Do you install ceiling fans?", "d-1")

    assert frame_types(sent).count("stream_delta") > 1
    assert "stream_delta" not in frame_types(seen)
    assert "stream_start" not in frame_types(seen)


async def test_rate_limit_refuses_the_message_over_it_whichever_process_receives_it(
    shared_topology, open_chat, fake_openai
):
    tab_a, tab_b, session = await shared_topology.two_tabs(open_chat)
    tabs = [tab_a, tab_b]
    for number in range(SHARED_RATE):
        sender, watcher = tabs[number % 2], tabs[(number + 1) % 2]
        sent, _seen = await ask_and_watch(sender, watcher, f"Limit question {number}", f"l{number}")
        assert sent[-1]["type"] == "stream_end", dumps(sent)

    for number, tab in enumerate(tabs, start=SHARED_RATE):
        refused = await tab.ask(f"Limit question {number}", f"l{number}")
        assert refused[-1]["type"] == "error", dumps(refused)
        assert refused[-1]["code"] == "rate_limited"
        assert 0 < refused[-1]["retry_after"] <= 60
    assert len(shared_topology.messages(session["session_id"])) == 2 * SHARED_RATE


async def test_messages_of_one_session_on_two_processes_are_answered_one_at_a_time(
    shared_topology, open_chat, fake_openai
):
    tab_a, tab_b, session = await shared_topology.two_tabs(open_chat)
    fake_openai.queue("reply", text="Yes, on Saturdays too.", ttft=1.0)
    fake_openai.queue("reply", text="A deep clean takes five hours.")

    await tab_a.send(
        {"type": "message", "content": "Do you work on Saturdays?", "client_message_id": "o-1"}
    )
    assert (await tab_a.receive())["type"] == "message"  # stored: its turn has begun
    await tab_b.send(
        {"type": "message", "content": "How long is a deep clean?", "client_message_id": "o-2"}
    )
    seen_b = await tab_b.receive_until("stream_end")  # the first answer, relayed
    seen_b += await tab_b.receive_until("stream_end")  # its own

    assert seen_b[-1]["message"]["content"] == "A deep clean takes five hours.", dumps(seen_b)
    _first, second = fake_openai.chat_requests()
    # The second answer was asked for only once the first was stored, so it knows it.
    assert [(m["role"], m["content"]) for m in second["body"]["messages"][1:]] == [
        ("user", "Do you work on Saturdays?"),
        ("assistant", "Yes, on Saturdays too."),
        ("user", "How long is a deep clean?"),
    ]
    assert shared_topology.messages(session["session_id"]) == [
        ("user", "Do you work on Saturdays?"),
        ("assistant", "Yes, on Saturdays too."),
        ("user", "How long is a deep clean?"),
        ("assistant", "A deep clean takes five hours."),
    ]


async def test_answer_cached_by_one_process_is_served_from_the_cache_by_the_other(
    shared_topology, open_chat, fake_openai
):
    first, second = shared_topology.servers
    visitor_1, _ = await open_chat(first)
    await visitor_1.start()
    answered = await visitor_1.ask("Which cities do you serve?", "c-1")
    visitor_2, _ = await open_chat(second)
    await visitor_2.start()

    cached = await visitor_2.ask("Which cities do you serve?", "c-2")

    assert answered[-1]["message"]["metadata"]["cached"] is False
    assert cached[-1]["message"]["metadata"]["cached"] is True
    assert cached[-1]["message"]["content"] == answered[-1]["message"]["content"]
    assert len(fake_openai.chat_requests()) == 1


async def test_each_process_keeps_a_pool_of_database_connections_between_messages(
    shared_topology, open_chat, fake_openai
):
    for server in shared_topology.servers:
        tab, _ = await open_chat(server)
        await tab.start()
        await tab.ask(f"Do you paint walls ({server.kind})?", "p-1")

    [(held,)] = shared_topology.sql(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
    )

    # min_size 2 and max_size 8 per process (the docs' settings): connections are
    # kept between units of work rather than opened for each.
    assert 2 * 2 <= held <= 2 * 8
