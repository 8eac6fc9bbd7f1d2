"""An answer survives a network blip: a tab that resumes mid-answer gets it (one process,
the in-memory channel layer; across processes: tests/production/test_blip.py)."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async

from sophie_chat import backends
from sophie_chat.models import ChatMessage
from tests.support.overrides import settings_with

pytestmark = pytest.mark.django_db(transaction=True)

ANSWER = "one two three four five six seven eight nine ten eleven twelve"
LONG = ANSWER + " and on" * 30


@sync_to_async
def answers_of(session_id):
    return list(
        ChatMessage.objects.filter(session_id=session_id, role="assistant").values_list(
            "content", "status"
        )
    )


async def stored_answer(session_id, timeout=5.0):
    for _ in range(int(timeout / 0.05)):
        answers = await answers_of(session_id)
        if answers:
            return answers
        await asyncio.sleep(0.05)
    return []


async def leave_mid_answer(connect, deltas=2):
    """Ask, read ``deltas`` deltas, close the tab; ``(session, text received)``."""
    client, _ = await connect()
    session = await client.start()
    await client.send({"type": "message", "content": "Tell me", "client_message_id": "b1"})
    await client.receive_until("stream_start")
    received = ""
    for _ in range(deltas):
        received += (await client.receive_until("stream_delta"))[-1]["delta"]
    await client.close()
    return session, received


def slow_model(text, *, delay=0.1, first_token_delay=0.0):
    """The test settings' DummyBackend (as the settings in force build it), answering slowly."""
    model = backends.llm()
    model.reset()
    model.delay, model.first_token_delay = delay, first_token_delay
    model.enqueue(text)
    return model


def shown(frames):
    """The answer as a client following the protocol shows it (resumed ``content``, deltas)."""
    text = ""
    for frame in frames:
        if frame["type"] == "stream_start":
            text = frame.get("content", "")
        elif frame["type"] == "stream_delta":
            text += frame["delta"]
    return text


async def test_tab_resuming_mid_answer_gets_the_text_so_far_then_the_rest(connect):
    with settings_with(STREAM_GRACE_SECONDS=10):
        dummy_llm = slow_model(ANSWER)
        session, before = await leave_mid_answer(connect)
        tab, _ = await connect()
        resumed = await tab.start(resume_token=session["resume_token"])
        frames = await tab.receive_until("stream_end")
    assert resumed["type"] == "session"
    assert [m["role"] for m in resumed["history"]] == ["user"]
    start = frames[0]
    assert start["type"] == "stream_start"
    assert start["resumed"] is True
    assert start["content"].startswith(before)
    end = frames[-1]["message"]
    assert start["message_id"] == end["id"]
    assert shown(frames) == end["content"] == ANSWER
    assert end["status"] == "complete"
    assert await answers_of(session["session_id"]) == [(ANSWER, "complete")]
    assert len(dummy_llm.requests) == 1
    assert dummy_llm.closed_early == 0


async def test_tab_resuming_before_the_answer_starts_gets_all_of_it(connect):
    with settings_with(STREAM_GRACE_SECONDS=10):
        dummy_llm = slow_model("Hello there", delay=0, first_token_delay=0.5)
        client, _ = await connect()
        session = await client.start()
        await client.send({"type": "message", "content": "Hi", "client_message_id": "b2"})
        await client.receive_until("message")
        await client.close()
        tab, _ = await connect()
        await tab.start(resume_token=session["resume_token"])
        frames = await tab.receive_until("stream_end")
    starts = [frame for frame in frames if frame["type"] == "stream_start"]
    assert len(starts) == 1
    assert starts[0]["content"] == ""
    assert shown(frames) == frames[-1]["message"]["content"] == "Hello there"
    assert len(dummy_llm.requests) == 1


async def test_answer_stops_as_interrupted_when_no_tab_resumes_within_the_grace(connect):
    with settings_with(STREAM_GRACE_SECONDS=0.3):
        dummy_llm = slow_model(LONG)
        session, before = await leave_mid_answer(connect)
        [(content, status)] = await stored_answer(session["session_id"])
        tab, _ = await connect()
        resumed = await tab.start(resume_token=session["resume_token"])
    assert status == "interrupted"
    assert content.startswith(before)
    assert len(content) < len(LONG)
    assert dummy_llm.closed_early == 1
    assert [m["status"] for m in resumed["history"]] == ["complete", "interrupted"]
    assert await tab.nothing_more(0.3)


async def test_resend_after_resuming_mid_answer_waits_and_replays_without_a_second_call(
    connect,
):
    with settings_with(STREAM_GRACE_SECONDS=10):
        dummy_llm = slow_model(ANSWER, delay=0.05)
        session, _ = await leave_mid_answer(connect)
        tab, _ = await connect()
        await tab.start(resume_token=session["resume_token"])
        await tab.send({"type": "message", "content": "Tell me", "client_message_id": "b1"})
        frames = await tab.receive_until("stream_end")
        frames += await tab.receive_until("stream_end")
    ends = [frame["message"] for frame in frames if frame["type"] == "stream_end"]
    assert [end["content"] for end in ends] == [ANSWER, ANSWER]
    assert ends[0]["id"] == ends[1]["id"]
    assert len(dummy_llm.requests) == 1


async def test_tab_opening_mid_answer_follows_it_while_the_asking_tab_stays(connect, dummy_llm):
    dummy_llm.delay = 0.05
    dummy_llm.enqueue(ANSWER)
    asking, _ = await connect()
    session = await asking.start()
    await asking.send({"type": "message", "content": "Tell me", "client_message_id": "b3"})
    asked = await asking.receive_until("stream_delta")
    other, _ = await connect()
    await other.start(resume_token=session["resume_token"])
    followed = await other.receive_until("stream_end")
    asked += await asking.receive_until("stream_end")
    assert shown(followed) == shown(asked) == ANSWER
    assert followed[-1]["message"] == asked[-1]["message"]
    assert len(dummy_llm.requests) == 1


async def test_with_no_grace_the_answer_stops_when_its_tab_leaves(connect):
    with settings_with(STREAM_GRACE_SECONDS=0):
        dummy_llm = slow_model(ANSWER)
        session, before = await leave_mid_answer(connect)
        [(content, status)] = await answers_of(session["session_id"])
    assert status == "interrupted"
    assert content == before or content.startswith(before)
    assert dummy_llm.closed_early == 1


async def test_fast_answer_reaches_a_resumed_tab_in_few_frames(connect):
    words = " ".join(f"word{n}" for n in range(300))
    with settings_with(STREAM_GRACE_SECONDS=10):
        dummy_llm = slow_model(words, delay=0, first_token_delay=0.5)
        client, _ = await connect()
        session = await client.start()
        await client.send({"type": "message", "content": "Hi", "client_message_id": "b4"})
        await client.receive_until("message")
        await client.close()
        tab, _ = await connect()
        await tab.start(resume_token=session["resume_token"])
        frames = await tab.receive_until("stream_end")
    assert shown(frames) == frames[-1]["message"]["content"] == words
    assert len([f for f in frames if f["type"] == "stream_delta"]) < 50
    assert len(dummy_llm.requests) == 1
