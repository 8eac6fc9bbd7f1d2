"""Protocol v1 through the consumer: every client type, server type and error code."""

from __future__ import annotations

import asyncio
import json

import pytest
from asgiref.sync import sync_to_async

from sophie_chat import backends
from sophie_chat.llm.base import LLMTimeout, LLMUnavailable
from sophie_chat.models import ChatMessage, ChatSession, KnowledgeBaseEntry, MessageFeedback
from sophie_chat.security import make_resume_token
from tests.support.overrides import settings_with
from tests.support.records import make_user
from tests.support.websocket import make_communicator

pytestmark = pytest.mark.django_db(transaction=True)



@sync_to_async
def messages_of(session_id):
    return list(
        ChatMessage.objects.filter(session_id=session_id)
        .order_by("created_at")
        .values_list("role", "content", "status")
    )


# -- connect / welcome -------------------------------------------------------------


async def test_welcome_announces_assistant_protocol_and_limits(connect):
    _client, welcome = await connect()
    assert welcome["type"] == "welcome"
    assert welcome["protocol"] == 1
    assert welcome["assistant"]["name"] == "Sophie"
    assert "Sophie" in welcome["greeting"]
    assert welcome["limits"]["max_message_length"] == 2000


async def test_welcome_greeting_follows_locale_query_parameter(connect):
    _client, welcome = await connect(path="/ws/chat/?locale=pt-BR")
    assert welcome["greeting"] == "Olá! Eu sou a Sophie. Como posso ajudar você hoje?"


async def test_ping_is_answered_with_pong(connect):
    client, _ = await connect()
    await client.send({"type": "ping"})
    assert await client.receive() == {"type": "pong"}


# -- sessions ---------------------------------------------------------------------


async def test_session_init_starts_a_new_session_with_token(connect):
    client, _ = await connect()
    session = await client.start(context={"page_url": "https://shop.test/a", "locale": "en"})
    assert session["type"] == "session"
    assert session["resumed"] is False
    assert session["status"] == "active"
    assert session["history"] == []
    assert session["resume_token"]
    stored = await ChatSession.objects.aget(pk=session["session_id"])
    assert stored.context["page"]["page_url"] == "https://shop.test/a"


async def test_message_before_session_init_starts_a_session_implicitly(connect, dummy_llm):
    client, _ = await connect()
    await client.send({"type": "message", "content": "Hello"})
    session = await client.receive()
    assert session["type"] == "session"
    assert session["resumed"] is False
    ack = await client.receive()
    assert ack["type"] == "message"
    assert ack["message"]["content"] == "Hello"


async def test_anonymous_visitor_resumes_with_token_and_gets_history(connect, dummy_llm):
    dummy_llm.enqueue("Hi there.")
    client, _ = await connect()
    first = await client.start()
    await client.ask("Hello", "c1")
    await client.close()

    client2, _ = await connect()
    resumed = await client2.start(resume_token=first["resume_token"])
    assert resumed["resumed"] is True
    assert resumed["session_id"] == first["session_id"]
    assert [(m["role"], m["content"]) for m in resumed["history"]] == [
        ("user", "Hello"),
        ("assistant", "Hi there."),
    ]


async def test_anonymous_visitor_cannot_resume_by_id_alone(connect):
    client, _ = await connect()
    first = await client.start()
    client2, _ = await connect()
    reply = await client2.start(session_id=first["session_id"])
    assert reply["type"] == "error"
    assert reply["code"] == "session_not_found"


async def test_forged_resume_token_is_session_not_found(connect):
    client, _ = await connect()
    first = await client.start()
    reply = await client.start(resume_token=first["resume_token"][:-2] + "xx")
    assert reply["code"] == "session_not_found"


async def test_unknown_session_id_is_session_not_found(connect):
    client, _ = await connect(user=await make_user())
    reply = await client.start(session_id="00000000-0000-4000-8000-000000000000")
    assert reply["code"] == "session_not_found"


async def test_user_resumes_own_session_by_id(connect):
    user = await make_user()
    client, _ = await connect(user=user)
    first = await client.start()
    client2, _ = await connect(user=user)
    reply = await client2.start(session_id=first["session_id"])
    assert reply["type"] == "session"
    assert reply["resumed"] is True


async def test_user_cannot_resume_another_users_session(connect):
    owner = await make_user("owner")
    other = await make_user("other")
    client, _ = await connect(user=owner)
    first = await client.start()
    client2, _ = await connect(user=other)
    reply = await client2.start(session_id=first["session_id"])
    assert reply["code"] == "session_not_found"
    reply = await client2.start(resume_token=first["resume_token"])
    assert reply["code"] == "session_not_found"


async def test_logged_out_visitor_cannot_resume_user_session_with_token(connect):
    client, _ = await connect(user=await make_user())
    first = await client.start()
    anonymous, _ = await connect()
    reply = await anonymous.start(resume_token=first["resume_token"])
    assert reply["code"] == "session_not_found"


async def test_user_who_logs_in_adopts_anonymous_session(connect):
    anonymous, _ = await connect()
    first = await anonymous.start()
    user = await make_user()
    client, _ = await connect(user=user)
    reply = await client.start(resume_token=first["resume_token"])
    assert reply["resumed"] is True
    session = await ChatSession.objects.aget(pk=first["session_id"])
    assert session.user_id == user.pk
    assert session.user_type == "client"


async def test_expired_session_is_session_closed(connect):
    client, _ = await connect()
    first = await client.start()
    await ChatSession.objects.filter(pk=first["session_id"]).aupdate(
        expires_at="2000-01-01T00:00:00Z"
    )
    reply = await client.start(resume_token=first["resume_token"])
    assert reply["code"] == "session_closed"
    session = await ChatSession.objects.aget(pk=first["session_id"])
    assert session.status == "expired"


async def test_session_close_ends_conversation_and_refuses_messages(connect, dummy_llm):
    client, _ = await connect()
    first = await client.start()
    await client.send({"type": "session_close"})
    closed = await client.receive()
    assert closed == {"type": "session_closed", "session_id": first["session_id"]}
    frames = await client.ask("Still there?")
    assert frames[-1]["code"] == "session_closed"
    reply = await client.start(resume_token=first["resume_token"])
    assert reply["code"] == "session_closed"


async def test_session_close_before_session_is_session_not_found(connect):
    client, _ = await connect()
    await client.send({"type": "session_close"})
    assert (await client.receive())["code"] == "session_not_found"


# -- a turn -------------------------------------------------------------------------


async def test_message_is_acknowledged_then_streamed_and_stored(connect, dummy_llm):
    dummy_llm.enqueue("Cleaning costs R$ 120.")
    client, _ = await connect()
    session = await client.start()
    frames = await client.ask("How much is cleaning?", "c-1")
    types = [f["type"] for f in frames]
    assert types[0] == "message"
    ack = frames[0]["message"]
    assert ack["role"] == "user"
    assert ack["client_message_id"] == "c-1"
    assert "typing" in types
    start = next(f for f in frames if f["type"] == "stream_start")
    assert start["reply_to"] == ack["id"]
    deltas = [f["delta"] for f in frames if f["type"] == "stream_delta"]
    assert len(deltas) > 1
    end = frames[-1]["message"]
    assert "".join(deltas) == end["content"] == "Cleaning costs R$ 120."
    assert end["id"] == start["message_id"]
    assert end["metadata"]["cached"] is False
    assert end["metadata"]["fallback"] is False
    assert end["metadata"]["model"] == "dummy"
    assert await messages_of(session["session_id"]) == [
        ("user", "How much is cleaning?", "complete"),
        ("assistant", "Cleaning costs R$ 120.", "complete"),
    ]
    stored = await ChatMessage.objects.aget(pk=end["id"])
    assert stored.total_ms is not None
    assert stored.first_token_ms is not None
    assert stored.completion_tokens == 4


async def test_message_text_is_stored_as_sent_not_html_escaped(connect, dummy_llm):
    client, _ = await connect()
    await client.start()
    frames = await client.ask("<b>bold</b> & 'quotes'")
    assert frames[0]["message"]["content"] == "<b>bold</b> & 'quotes'"


async def test_prompt_contains_question_history_and_knowledge(connect, dummy_llm):
    await KnowledgeBaseEntry.objects.acreate(
        question="How do I cancel a booking?",
        answer="Cancel up to 24 hours before for free.",
        keywords=["cancel"],
        locale="en",
        url="/help/cancel/",
    )
    dummy_llm.enqueue("First.", "Second.")
    client, _ = await connect()
    await client.start()
    await client.ask("Hello")
    frames = await client.ask("How do I cancel my booking?")
    request = dummy_llm.requests[-1]
    roles = [m.role for m in request.messages]
    assert roles == ["system", "user", "assistant", "user"]
    assert "Cancel up to 24 hours before for free." in request.messages[0].content
    assert request.messages[-1].content == "How do I cancel my booking?"
    assert frames[-1]["message"]["metadata"]["sources"] == [
        {"title": "How do I cancel a booking?", "url": "/help/cancel/"}
    ]


async def test_messages_sent_during_an_answer_are_queued_and_answered_in_order(connect, dummy_llm):
    dummy_llm.delay = 0.01
    dummy_llm.enqueue("one two three", "four five six")
    client, _ = await connect()
    await client.start()
    await client.send({"type": "message", "content": "first", "client_message_id": "a"})
    await client.send({"type": "message", "content": "second", "client_message_id": "b"})
    frames = await client.receive_until("stream_end")
    frames += await client.receive_until("stream_end")
    acks = [f["message"]["content"] for f in frames if f["type"] == "message"]
    answers = [f["message"]["content"] for f in frames if f["type"] == "stream_end"]
    assert acks == ["first", "second"]
    assert answers == ["one two three", "four five six"]
    # The second answer starts only after the first one ended.
    types = [f["type"] for f in frames]
    assert types.index("stream_end") < [i for i, t in enumerate(types) if t == "stream_start"][1]


async def test_ping_is_answered_while_an_answer_streams(connect, dummy_llm):
    dummy_llm.delay = 0.05
    dummy_llm.enqueue("a b c d e f g h")
    client, _ = await connect()
    await client.start()
    await client.send({"type": "message", "content": "hi"})
    await client.receive_until("stream_start")
    await client.send({"type": "ping"})
    frames = await client.receive_until("pong")
    assert frames[-1] == {"type": "pong"}
    assert "stream_end" not in [f["type"] for f in frames]
    await client.receive_until("stream_end")


async def test_resend_with_same_client_message_id_creates_no_duplicate(connect, dummy_llm):
    dummy_llm.enqueue("The answer.")
    client, _ = await connect()
    session = await client.start()
    first = await client.ask("Question", "same-id")
    await client.close()

    client2, _ = await connect()
    await client2.start(resume_token=session["resume_token"])
    again = await client2.ask("Question", "same-id")
    assert again[0]["message"]["id"] == first[0]["message"]["id"]
    assert again[-1]["message"]["id"] == first[-1]["message"]["id"]
    assert again[-1]["message"]["content"] == "The answer."
    assert len(dummy_llm.requests) == 1
    assert len(await messages_of(session["session_id"])) == 2


async def test_resend_of_a_stored_but_unanswered_message_answers_it_once(connect, dummy_llm):
    client, _ = await connect()
    session = await client.start()
    await ChatMessage.objects.acreate(
        session_id=session["session_id"],
        role="user",
        content="Lost answer?",
        client_message_id="x1",
    )
    frames = await client.ask("Lost answer?", "x1")
    assert frames[-1]["type"] == "stream_end"
    assert len(await messages_of(session["session_id"])) == 2


async def test_disconnect_mid_answer_stores_partial_answer_as_interrupted(connect, dummy_llm):
    dummy_llm.delay = 0.05
    # Longer than the test settings' STREAM_GRACE_SECONDS after the tab leaves.
    dummy_llm.enqueue("one two three four five six seven eight nine " + "more " * 20 + "ten")
    client, _ = await connect()
    session = await client.start()
    await client.send({"type": "message", "content": "Tell me", "client_message_id": "i1"})
    await client.receive_until("stream_start")
    await client.receive()
    await client.receive()
    await client.close()
    for _ in range(50):
        stored = await messages_of(session["session_id"])
        if len(stored) == 2:
            break
        await asyncio.sleep(0.05)
    role, content, status = stored[1]
    assert role == "assistant"
    assert status == "interrupted"
    assert content
    assert "ten" not in content
    assert dummy_llm.closed_early == 1


# -- fallbacks -------------------------------------------------------------------


async def test_model_failure_answers_from_knowledge_base_as_fallback(connect, dummy_llm):
    await KnowledgeBaseEntry.objects.acreate(
        question="What payment methods do you accept?",
        answer="We accept Pix, credit cards and boleto.",
        keywords=["payment", "pix"],
    )
    dummy_llm.enqueue_error(LLMUnavailable("down"))
    client, _ = await connect()
    await client.start()
    frames = await client.ask("Which payment methods do you accept?")
    end = frames[-1]
    assert end["type"] == "stream_end"
    assert end["message"]["metadata"]["fallback"] is True
    assert "We accept Pix, credit cards and boleto." in end["message"]["content"]
    assert end["message"]["metadata"]["sources"][0]["title"] == (
        "What payment methods do you accept?"
    )


async def test_model_timeout_without_knowledge_gives_fallback_message(connect, dummy_llm):
    dummy_llm.enqueue_error(LLMTimeout())
    client, _ = await connect()
    await client.start()
    frames = await client.ask("zzzz qqqq")
    end = frames[-1]["message"]
    assert end["metadata"]["fallback"] is True
    assert "try again" in end["content"]


async def test_configured_fallback_message_is_used(connect):
    with settings_with(FALLBACK_MESSAGE="Call us at 0800 000 000."):
        backends.llm().enqueue_error(LLMUnavailable())
        client, _ = await connect()
        await client.start()
        frames = await client.ask("zzzz qqqq")
    assert frames[-1]["message"]["content"] == "Call us at 0800 000 000."


async def test_response_timeout_cuts_a_slow_model_and_falls_back(connect):
    with settings_with(RESPONSE_TIMEOUT_SECONDS=0.3):
        backends.llm().first_token_delay = 5
        client, _ = await connect()
        await client.start()
        frames = await client.ask("zzzz qqqq")
    assert frames[-1]["message"]["metadata"]["fallback"] is True
    assert frames[-1]["message"]["metadata"]["error"] == "LLMTimeout"


async def test_stream_breaking_midway_keeps_deltas_and_appends_fallback(connect, dummy_llm):
    dummy_llm.enqueue_error(LLMUnavailable(), text="Partial words here", after=2)
    client, _ = await connect()
    await client.start()
    frames = await client.ask("zzzz qqqq")
    deltas = "".join(f["delta"] for f in frames if f["type"] == "stream_delta")
    end = frames[-1]["message"]
    assert deltas == end["content"]
    assert end["content"].startswith("Partial words")
    assert end["metadata"]["fallback"] is True


async def test_ai_unavailable_when_fallbacks_are_off(connect):
    with settings_with(FALLBACK_RESPONSES=False):
        backends.llm().enqueue_error(LLMUnavailable())
        client, _ = await connect()
        session = await client.start()
        frames = await client.ask("Anything", "u1")
    assert frames[-1]["type"] == "error"
    assert frames[-1]["code"] == "ai_unavailable"
    assert frames[-1]["reply_to"] == "u1"
    assert await messages_of(session["session_id"]) == [("user", "Anything", "complete")]


# -- response cache --------------------------------------------------------------


async def test_first_question_is_answered_from_cache_for_the_next_visitor(connect, dummy_llm):
    dummy_llm.enqueue("Cached answer.", "Fresh answer.")
    first, _ = await connect()
    await first.start()
    await first.ask("What are your opening hours?")
    second, _ = await connect(client=("198.51.100.2", 1))
    await second.start()
    frames = await second.ask("what are your opening hours")
    end = frames[-1]["message"]
    assert end["content"] == "Cached answer."
    assert end["metadata"]["cached"] is True
    assert len(dummy_llm.requests) == 1


async def test_follow_up_questions_are_never_answered_from_cache(connect, dummy_llm):
    dummy_llm.enqueue("A1", "A2", "A3")
    first, _ = await connect()
    await first.start()
    await first.ask("Hello")
    await first.ask("And the price?")
    second, _ = await connect(client=("198.51.100.2", 1))
    await second.start()
    await second.ask("Hi")
    frames = await second.ask("And the price?")
    assert frames[-1]["message"]["metadata"]["cached"] is False


async def test_logged_in_users_answers_are_not_shared_through_cache(connect, dummy_llm):
    dummy_llm.enqueue("Private answer.", "Other answer.")
    client, _ = await connect(user=await make_user())
    await client.start()
    await client.ask("What are my bookings?")
    other, _ = await connect(client=("198.51.100.2", 1))
    await other.start()
    frames = await other.ask("What are my bookings?")
    assert frames[-1]["message"]["content"] == "Other answer."


async def test_fallback_answers_are_never_cached(connect, dummy_llm):
    dummy_llm.enqueue_error(LLMUnavailable())
    dummy_llm.enqueue("Real answer.")
    first, _ = await connect()
    await first.start()
    await first.ask("Opening hours?")
    second, _ = await connect(client=("198.51.100.2", 1))
    await second.start()
    frames = await second.ask("Opening hours?")
    assert frames[-1]["message"]["content"] == "Real answer."


# -- feedback and rating --------------------------------------------------------


async def test_feedback_on_an_answer_is_stored_and_acknowledged(connect, dummy_llm):
    client, _ = await connect()
    await client.start()
    frames = await client.ask("Hello")
    answer_id = frames[-1]["message"]["id"]
    await client.send(
        {"type": "feedback", "message_id": answer_id, "rating": "down", "comment": "Too vague"}
    )
    assert await client.receive() == {"type": "ack", "of": "feedback", "message_id": answer_id}
    feedback = await MessageFeedback.objects.aget(message_id=answer_id)
    assert (feedback.rating, feedback.comment) == ("down", "Too vague")


async def test_feedback_on_another_sessions_message_is_refused(connect, dummy_llm):
    client, _ = await connect()
    await client.start()
    frames = await client.ask("Hello")
    answer_id = frames[-1]["message"]["id"]
    other, _ = await connect(client=("198.51.100.2", 1))
    await other.start()
    await other.send({"type": "feedback", "message_id": answer_id, "rating": "up"})
    reply = await other.receive()
    assert reply["code"] == "invalid_message"
    assert not await MessageFeedback.objects.filter(message_id=answer_id).aexists()


async def test_session_rate_stores_score_and_comment(connect):
    client, _ = await connect()
    session = await client.start()
    await client.send({"type": "session_rate", "score": 4, "comment": "Nice"})
    assert await client.receive() == {"type": "ack", "of": "session_rate"}
    stored = await ChatSession.objects.aget(pk=session["session_id"])
    assert (stored.satisfaction_score, stored.satisfaction_comment) == (4, "Nice")


@pytest.mark.parametrize("score", [0, 6, "5", True, 4.5])
async def test_session_rate_outside_one_to_five_is_invalid_message(connect, score):
    client, _ = await connect()
    await client.start()
    await client.send({"type": "session_rate", "score": score})
    assert (await client.receive())["code"] == "invalid_message"


# -- typing and other tabs ------------------------------------------------------


async def test_second_tab_sees_messages_answers_and_typing(connect, dummy_llm):
    dummy_llm.enqueue("Shared answer.")
    tab1, _ = await connect()
    session = await tab1.start()
    tab2, _ = await connect()
    await tab2.start(resume_token=session["resume_token"])
    await tab1.send({"type": "typing", "is_typing": True})
    assert await tab2.receive() == {"type": "typing", "is_typing": True, "role": "user"}
    await tab1.ask("From tab one")
    seen = await tab2.receive_until("stream_end")
    types = [f["type"] for f in seen]
    assert "stream_delta" not in types  # deltas go only to the asking tab
    assert seen[0]["message"]["content"] == "From tab one"
    assert seen[-1]["message"]["content"] == "Shared answer."


# -- errors ---------------------------------------------------------------------


@pytest.mark.parametrize("raw", ["not json", "[1, 2]", '"text"', "{bad", "null"])
async def test_frame_that_is_not_a_json_object_is_invalid_json(connect, raw):
    client, _ = await connect()
    await client.send(raw)
    reply = await client.receive()
    assert reply["type"] == "error"
    assert reply["code"] == "invalid_json"
    await client.send({"type": "ping"})
    assert (await client.receive())["type"] == "pong"  # still open


@pytest.mark.parametrize(
    "frame",
    [
        {"content": "no type"},
        {"type": "dance"},
        {"type": "message"},
        {"type": "message", "content": 42},
        {"type": "message", "content": "x", "client_message_id": "y" * 65},
        {"type": "typing"},
        {"type": "typing", "is_typing": "yes"},
        {"type": "feedback", "message_id": "m", "rating": "meh"},
        {"type": "session_init", "context": "not an object"},
        {"type": "session_init", "session_id": 5},
    ],
)
async def test_malformed_frames_are_invalid_message(connect, frame):
    client, _ = await connect()
    await client.send(frame)
    reply = await client.receive()
    assert reply["code"] == "invalid_message"
    assert reply["message"]


async def test_whitespace_message_is_empty_message(connect):
    client, _ = await connect()
    await client.send({"type": "message", "content": "  \n\t ", "client_message_id": "e1"})
    reply = await client.receive()
    assert reply["code"] == "empty_message"
    assert reply["reply_to"] == "e1"


async def test_message_over_limit_is_message_too_long_and_not_stored(connect):
    client, _ = await connect()
    session = await client.start()
    await client.send({"type": "message", "content": "a" * 2001})
    reply = await client.receive()
    assert reply["code"] == "message_too_long"
    assert await messages_of(session["session_id"]) == []


async def test_frame_over_the_byte_cap_is_refused_whatever_the_server_allows(connect):
    client, _ = await connect()
    await client.send(json.dumps({"type": "ping", "pad": "x" * 70000}))
    assert (await client.receive())["code"] == "message_too_long"


async def test_oversized_context_is_invalid_message(connect):
    client, _ = await connect()
    reply = await client.start(context={"extra": {"blob": "x" * 11000}})
    assert reply["code"] == "invalid_message"


async def test_rate_limit_refuses_with_retry_after_and_stores_nothing(connect, dummy_llm):
    with settings_with(RATE_LIMIT={"OPTIONS": {"rate": "2/m", "burst": None}}):
        client, _ = await connect()
        session = await client.start()
        await client.ask("one")
        await client.ask("two")
        frames = await client.ask("three", "r3")
    error = frames[-1]
    assert error["code"] == "rate_limited"
    assert 0 < error["retry_after"] <= 60
    assert error["reply_to"] == "r3"
    contents = [c for _r, c, _s in await messages_of(session["session_id"])]
    assert "three" not in contents


async def test_new_anonymous_session_does_not_reset_the_ip_limit(connect, dummy_llm):
    with settings_with(RATE_LIMIT={"OPTIONS": {"rate": "2/m", "burst": None}}):
        client, _ = await connect()
        await client.start()
        await client.ask("one")
        await client.ask("two")
        fresh, _ = await connect()
        await fresh.start()
        frames = await fresh.ask("three")
    assert frames[-1]["code"] == "rate_limited"


async def test_spoofed_forwarded_for_does_not_change_the_limited_ip(connect, dummy_llm):
    with settings_with(RATE_LIMIT={"OPTIONS": {"rate": "1/m", "burst": None}}):
        client, _ = await connect()
        await client.start()
        await client.ask("one")
        spoofer, _ = await connect(headers=[(b"x-forwarded-for", b"192.0.2.99")])
        await spoofer.start()
        frames = await spoofer.ask("two")
    assert frames[-1]["code"] == "rate_limited"


async def test_internal_error_is_reported_without_details(connect, dummy_llm, monkeypatch):
    from sophie_chat import store

    async def broken(*args, **kwargs):
        raise RuntimeError("database exploded: secret details")

    monkeypatch.setattr(store, "store_user_message", broken)
    client, _ = await connect()
    await client.start()
    frames = await client.ask("hello", "ie1")
    assert frames[-1]["code"] == "internal_error"
    assert "secret" not in frames[-1]["message"]
    assert frames[-1]["reply_to"] == "ie1"
    assert dummy_llm.requests == []


async def test_too_many_connections_per_client_closes_with_4429(connect):
    with settings_with(MAX_CONNECTIONS_PER_CLIENT=1):
        await connect()
        communicator = make_communicator()
        connected, _ = await communicator.connect()
        assert connected
        reply = json.loads(await communicator.receive_from())
        assert reply["code"] == "too_many_connections"
        assert await communicator.receive_output() == {"type": "websocket.close", "code": 4429}


async def test_too_many_connections_per_process_closes_with_4429(connect):
    with settings_with(MAX_CONNECTIONS_PER_PROCESS=1):
        await connect()
        communicator = make_communicator(client=("198.51.100.9", 1))
        await communicator.connect()
        reply = json.loads(await communicator.receive_from())
        assert reply["code"] == "too_many_connections"


async def test_closed_connections_free_their_slot(connect):
    with settings_with(MAX_CONNECTIONS_PER_CLIENT=1):
        client, _ = await connect()
        await client.close()
        _client2, welcome = await connect()
    assert welcome["type"] == "welcome"


async def test_anonymous_visitor_is_forbidden_when_anonymous_chat_is_off(connect):
    with settings_with(ALLOW_ANONYMOUS=False):
        communicator = make_communicator()
        await communicator.connect()
        reply = json.loads(await communicator.receive_from())
        assert reply["code"] == "forbidden"
        assert await communicator.receive_output() == {"type": "websocket.close", "code": 4403}


async def test_logged_in_user_may_chat_when_anonymous_chat_is_off(connect):
    with settings_with(ALLOW_ANONYMOUS=False):
        _client, welcome = await connect(user=await make_user())
    assert welcome["type"] == "welcome"


async def test_error_messages_are_localized(connect):
    client, _ = await connect(path="/ws/chat/?locale=pt-br")
    await client.send("nope")
    reply = await client.receive()
    assert reply["code"] == "invalid_json"
    assert reply["message"] == "Não foi possível ler a mensagem (não é um objeto JSON)."


async def test_resume_token_of_one_session_does_not_open_another(connect):
    client, _ = await connect()
    a = await client.start()
    b = await client.start()
    reply = await client.start(session_id=b["session_id"], resume_token=a["resume_token"])
    assert reply["code"] == "session_not_found"
    assert make_resume_token(a["session_id"]) != make_resume_token(b["session_id"])


async def test_sources_list_each_link_once_best_first(connect, dummy_llm):
    for question, locale in (("How do I pay?", "en"), ("How do I pay with Pix?", "en")):
        await KnowledgeBaseEntry.objects.acreate(
            question=question, answer="Pix or card.", keywords=["pay"], locale=locale,
            url="/help/payments/")
    client, _ = await connect()
    await client.start()
    frames = await client.ask("How do I pay with Pix?")
    assert frames[-1]["message"]["metadata"]["sources"] == [
        {"title": "How do I pay with Pix?", "url": "/help/payments/"}]


async def test_unreachable_rate_limiter_fails_closed_without_a_model_call(connect):
    with settings_with(RATE_LIMIT={"BACKEND": "sophie_chat.ratelimit.redis.RedisRateLimiter",
                                   "OPTIONS": {"url": "redis://127.0.0.1:1/0",
                                               "socket_timeout": 0.5}}):
        model = backends.llm()
        client, _ = await connect()
        session = await client.start()
        frames = await client.ask("hello", "f1")
    assert frames[-1]["code"] == "service_unavailable"
    assert frames[-1]["retry_after"] > 0
    assert frames[-1]["reply_to"] == "f1"
    assert model.requests == []
    assert await messages_of(session["session_id"]) == []
