"""A conversation over a real socket: a real ASGI server process (uvicorn and
daphne), a real WebSocket client, the real ``openai`` SDK talking HTTP to the
fake OpenAI server.

Each test runs once per ASGI server. Server processes are shared by the tests
of this module, and the response cache of each lives as long as its process,
so every test asks its own questions.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from tests.support.chat_servers import ChatServer
from tests.support.openai_server import API_KEY, MODEL_REPLY, FakeOpenAIProcess
from tests.support.websocket import ChatClient

pytestmark = pytest.mark.server

PAYMENT_ANSWER = "We accept Pix, credit cards and boleto."


def deltas_of(frames: list[dict[str, Any]]) -> list[str]:
    return [f["delta"] for f in frames if f["type"] == "stream_delta"]


def history_of(session: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(m["role"], m["content"], m["status"]) for m in session["history"]]


async def resume(open_chat: Any, server: ChatServer, token: str) -> tuple[ChatClient, dict]:
    client, _welcome = await open_chat(server)
    return client, await client.start(resume_token=token)


# -- connecting -----------------------------------------------------------------


async def test_connection_is_welcomed_with_assistant_protocol_and_limits(chat_server, open_chat):
    _client, welcome = await open_chat(chat_server)
    assert welcome["type"] == "welcome"
    assert welcome["protocol"] == 1
    assert welcome["assistant"]["name"] == "Sophie"
    assert welcome["greeting"] == "Hi! I'm Sophie. How can I help you today?"
    assert welcome["limits"]["max_message_length"] == 2000


async def test_session_init_starts_a_session_with_a_resume_token(chat_server, open_chat):
    client, _ = await open_chat(chat_server)
    session = await client.start(context={"page_url": "https://shop.test/", "locale": "en"})
    assert session["type"] == "session"
    assert session["resumed"] is False
    assert session["status"] == "active"
    assert session["history"] == []
    assert session["session_id"]
    assert session["resume_token"]


async def test_ping_is_answered_with_pong(chat_server, open_chat):
    client, _ = await open_chat(chat_server)
    await client.send({"type": "ping"})
    assert await client.receive() == {"type": "pong"}


# -- a turn ---------------------------------------------------------------------


async def test_message_is_acknowledged_with_its_server_id_and_client_message_id(
    chat_server, open_chat, fake_openai
):
    client, _ = await open_chat(chat_server)
    await client.start()
    frames = await client.ask("Do you clean windows too?", "ack-1")
    ack = frames[0]
    assert ack["type"] == "message"
    assert ack["message"]["role"] == "user"
    assert ack["message"]["content"] == "Do you clean windows too?"
    assert ack["message"]["client_message_id"] == "ack-1"
    assert ack["message"]["id"]


async def test_answer_streams_from_the_model_as_start_deltas_and_end(
    chat_server, open_chat, fake_openai
):
    client, _ = await open_chat(chat_server)
    await client.start()
    frames = await client.ask("How long does cleaning a flat take?", "stream-1")
    ack = frames[0]["message"]
    start = next(f for f in frames if f["type"] == "stream_start")
    end = frames[-1]
    assert end["type"] == "stream_end"
    assert start["reply_to"] == ack["id"]
    assert end["message"]["id"] == start["message_id"]
    assert len(deltas_of(frames)) > 1
    assert "".join(deltas_of(frames)) == end["message"]["content"] == MODEL_REPLY
    assert end["message"]["role"] == "assistant"
    assert end["message"]["metadata"]["model"] == "gpt-4o-mini"
    assert end["message"]["metadata"]["fallback"] is False
    assert end["message"]["metadata"]["cached"] is False


async def test_model_receives_the_question_in_its_prompt(chat_server, open_chat, fake_openai):
    client, _ = await open_chat(chat_server)
    await client.start()
    await client.ask("Can I book an electrician for Saturday?")
    [request] = fake_openai.chat_requests()
    body = request["body"]
    assert body["model"] == "gpt-4o-mini"
    assert body["stream"] is True
    assert body["messages"][0]["role"] == "system"
    assert body["messages"][-1] == {
        "role": "user",
        "content": "Can I book an electrician for Saturday?",
    }
    assert request["headers"]["authorization"] == f"Bearer {API_KEY}"


async def test_answer_is_grounded_in_a_matching_knowledge_entry(
    chat_server, open_chat, fake_openai
):
    client, _ = await open_chat(chat_server)
    await client.start()
    frames = await client.ask("Can I pay with pix?")
    [request] = fake_openai.chat_requests()
    assert PAYMENT_ANSWER in request["body"]["messages"][0]["content"]
    assert frames[-1]["message"]["metadata"]["sources"] == [
        {"title": "What payment methods do you accept?", "url": "/help/payments/"}
    ]


async def test_same_first_question_of_another_visitor_is_answered_from_cache(
    chat_server, open_chat, fake_openai
):
    first, _ = await open_chat(chat_server)
    await first.start()
    await first.ask("What are your opening hours?")
    second, _ = await open_chat(chat_server)
    await second.start()
    frames = await second.ask("what are your opening hours")
    assert frames[-1]["message"]["content"] == MODEL_REPLY
    assert frames[-1]["message"]["metadata"]["cached"] is True
    assert len(fake_openai.chat_requests()) == 1


# -- reconnecting ---------------------------------------------------------------


async def test_reconnect_with_resume_token_resumes_with_full_history(
    chat_server, open_chat, fake_openai
):
    client, _ = await open_chat(chat_server)
    session = await client.start()
    await client.ask("Do you work on Sundays?", "resume-1")
    await client.close()

    _client2, resumed = await resume(open_chat, chat_server, session["resume_token"])
    assert resumed["type"] == "session"
    assert resumed["resumed"] is True
    assert resumed["session_id"] == session["session_id"]
    assert history_of(resumed) == [
        ("user", "Do you work on Sundays?", "complete"),
        ("assistant", MODEL_REPLY, "complete"),
    ]


async def test_resend_after_reconnect_replays_the_answer_without_asking_the_model_again(
    chat_server, open_chat, fake_openai
):
    client, _ = await open_chat(chat_server)
    session = await client.start()
    first = await client.ask("Is there a fee for cancelling?", "replay-1")
    await client.close()

    client2, _ = await resume(open_chat, chat_server, session["resume_token"])
    again = await client2.ask("Is there a fee for cancelling?", "replay-1")
    assert again[0]["message"]["id"] == first[0]["message"]["id"]
    assert again[-1]["type"] == "stream_end"
    assert again[-1]["message"]["id"] == first[-1]["message"]["id"]
    assert again[-1]["message"]["content"] == MODEL_REPLY
    assert len(fake_openai.chat_requests()) == 1
    await client2.close()
    _client3, resumed = await resume(open_chat, chat_server, session["resume_token"])
    assert len(resumed["history"]) == 2


# -- bad input --------------------------------------------------------------------


async def test_frame_that_is_not_json_is_invalid_json_and_the_connection_stays_open(
    chat_server, open_chat
):
    client, _ = await open_chat(chat_server)
    await client.send("this is not json")
    error = await client.receive()
    assert error["type"] == "error"
    assert error["code"] == "invalid_json"
    assert error["message"]
    await client.send({"type": "ping"})
    assert await client.receive() == {"type": "pong"}


async def test_frame_of_unknown_type_is_invalid_message(chat_server, open_chat):
    client, _ = await open_chat(chat_server)
    await client.send({"type": "dance"})
    error = await client.receive()
    assert error["code"] == "invalid_message"
    assert error["message"]


async def test_whitespace_only_message_is_empty_message(chat_server, open_chat, fake_openai):
    client, _ = await open_chat(chat_server)
    await client.start()
    frames = await client.ask(" \n\t ", "empty-1")
    assert frames == [
        {
            "type": "error",
            "code": "empty_message",
            "message": frames[0]["message"],
            "reply_to": "empty-1",
        }
    ]
    assert fake_openai.chat_requests() == []


async def test_message_over_the_limit_is_message_too_long(chat_server, open_chat, fake_openai):
    client, welcome = await open_chat(chat_server)
    await client.start()
    frames = await client.ask("a" * (welcome["limits"]["max_message_length"] + 1), "long-1")
    assert frames[-1]["code"] == "message_too_long"
    assert frames[-1]["reply_to"] == "long-1"
    assert fake_openai.chat_requests() == []


async def test_forged_resume_token_is_session_not_found(chat_server, open_chat):
    client, _ = await open_chat(chat_server)
    session = await client.start()
    reply = await client.start(resume_token=session["resume_token"][:-2] + "xx")
    assert reply["type"] == "error"
    assert reply["code"] == "session_not_found"


async def test_message_after_session_close_is_session_closed(chat_server, open_chat, fake_openai):
    client, _ = await open_chat(chat_server)
    session = await client.start()
    await client.send({"type": "session_close"})
    assert await client.receive() == {
        "type": "session_closed",
        "session_id": session["session_id"],
    }
    frames = await client.ask("Hello again?")
    assert frames[-1]["code"] == "session_closed"
    assert fake_openai.chat_requests() == []


async def test_messages_over_the_rate_are_rate_limited_with_retry_after(
    limited_server, open_chat, fake_openai
):
    client, _ = await open_chat(limited_server)
    await client.start()
    assert (await client.ask("First question about gardening?"))[-1]["type"] == "stream_end"
    assert (await client.ask("Second question about gardening?"))[-1]["type"] == "stream_end"
    frames = await client.ask("Third question about gardening?", "rate-3")
    assert frames[-1]["type"] == "error"
    assert frames[-1]["code"] == "rate_limited"
    assert 0 < frames[-1]["retry_after"] <= 60
    assert frames[-1]["reply_to"] == "rate-3"
    assert len(fake_openai.chat_requests()) == 2


async def test_connection_over_the_per_client_cap_is_closed_with_4429(limited_server, open_chat):
    first, welcome = await open_chat(limited_server)
    assert welcome["type"] == "welcome"
    second, error = await open_chat(limited_server)
    assert error["type"] == "error"
    assert error["code"] == "too_many_connections"
    assert await second.close_code() == 4429
    await first.send({"type": "ping"})
    assert await first.receive() == {"type": "pong"}


async def test_anonymous_visitor_is_forbidden_and_closed_with_4403(members_only_server, open_chat):
    client, error = await open_chat(members_only_server)
    assert error["type"] == "error"
    assert error["code"] == "forbidden"
    assert await client.close_code() == 4403


# -- leaving mid-answer -------------------------------------------------------------


async def leave_mid_answer(open_chat: Any, server: ChatServer, fake: FakeOpenAIProcess) -> dict:
    """Ask for a slow answer, close the socket after two deltas; the session frame."""
    fake.queue(text="one two three four five six seven eight nine ten", token_delay=0.2)
    client, _ = await open_chat(server)
    session = await client.start()
    await client.send({"type": "message", "content": "Tell me slowly", "client_message_id": "i1"})
    frames = await client.receive_until("stream_start")
    while len(deltas_of(frames)) < 2:
        frames.append(await client.receive())
    await client.close()
    return session


async def test_disconnect_mid_answer_stores_the_partial_answer_as_interrupted(
    chat_server, open_chat, fake_openai
):
    session = await leave_mid_answer(open_chat, chat_server, fake_openai)
    # Past tests/e2e/settings.py's STREAM_GRACE_SECONDS: a tab resuming within it
    # would pick the answer up (tests/test_flights.py).
    await asyncio.sleep(1)
    deadline = time.monotonic() + 5
    while True:
        client, resumed = await resume(open_chat, chat_server, session["resume_token"])
        if len(resumed["history"]) == 2 or time.monotonic() > deadline:
            break
        await client.close()
        await asyncio.sleep(0.1)
    question, answer = resumed["history"]
    assert (question["role"], question["content"]) == ("user", "Tell me slowly")
    assert answer["role"] == "assistant"
    assert answer["status"] == "interrupted"
    assert answer["content"].startswith("one two")
    assert "ten" not in answer["content"]


async def test_disconnect_mid_answer_closes_the_model_request(chat_server, open_chat, fake_openai):
    await leave_mid_answer(open_chat, chat_server, fake_openai)
    deadline = time.monotonic() + 5
    while not (requests := fake_openai.chat_requests())[0]["disconnected"]:
        assert time.monotonic() < deadline, requests
        await asyncio.sleep(0.05)
    assert requests[0]["completed"] is False


# -- when the model fails -------------------------------------------------------------


async def test_unreachable_model_gives_a_fallback_answer(model_down_server, open_chat):
    client, _ = await open_chat(model_down_server)
    await client.start()
    frames = await client.ask("zzzz qqqq xxxx")
    end = frames[-1]
    assert end["type"] == "stream_end"
    assert "".join(deltas_of(frames)) == end["message"]["content"]
    assert end["message"]["content"] == (
        "Sorry, I can't answer right now. Please try again in a few minutes."
    )
    assert end["message"]["metadata"]["fallback"] is True
    assert end["message"]["metadata"]["error"] == "LLMUnavailable"


async def test_unreachable_model_answers_from_a_matching_knowledge_entry(
    model_down_server, open_chat
):
    client, _ = await open_chat(model_down_server)
    await client.start()
    frames = await client.ask("Which payment methods do you accept?")
    end = frames[-1]["message"]
    assert end["metadata"]["fallback"] is True
    assert PAYMENT_ANSWER in end["content"]
    assert end["metadata"]["sources"][0]["title"] == "What payment methods do you accept?"


async def test_model_error_500_gives_a_fallback_answer(chat_server, open_chat, fake_openai):
    fake_openai.queue("error", status=500)
    client, _ = await open_chat(chat_server)
    await client.start()
    frames = await client.ask("zzzz wwww yyyy")
    end = frames[-1]
    assert end["type"] == "stream_end"
    assert end["message"]["metadata"]["fallback"] is True
    assert end["message"]["metadata"]["error"] == "LLMUnavailable"
    assert end["message"]["content"] == (
        "Sorry, I can't answer right now. Please try again in a few minutes."
    )
    assert len(fake_openai.chat_requests()) == 1
