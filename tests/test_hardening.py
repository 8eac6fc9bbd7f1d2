"""Issue 16's findings through the consumer in this process: each test failed before its fix.

The same findings over a real socket are in tests/e2e/test_slots.py, and the
permanent adversarial suite is tests/adversarial/.
"""

from __future__ import annotations

import dataclasses

import pytest
from asgiref.sync import sync_to_async

from sophie_chat.models import ChatMessage, ChatSession
from tests.support.overrides import settings_with

pytestmark = pytest.mark.django_db(transaction=True)


@sync_to_async
def count_rows() -> tuple[int, int]:
    return ChatSession.objects.count(), ChatMessage.objects.count()


# -- finding 3: the per-connection queue is bounded ----------------------------------


async def test_messages_past_the_queue_bound_are_refused_at_once_and_not_stored(connect, dummy_llm):
    dummy_llm.delay = 0.05
    dummy_llm.enqueue("one two three four five six seven eight")
    with settings_with(MAX_QUEUED_MESSAGES=2):
        client, _ = await connect()
        await client.start()
        for number in range(6):
            await client.send(
                {
                    "type": "message",
                    "content": f"Question {number}",
                    "client_message_id": f"q{number}",
                }
            )
        refused = []
        answered = 0
        while answered + len(refused) < 6:
            frame = await client.receive(timeout=10)
            if frame["type"] == "error":
                refused.append(frame)
            elif frame["type"] == "stream_end":
                answered += 1
    assert [f["code"] for f in refused] == ["rate_limited"] * 3
    assert [f["reply_to"] for f in refused] == ["q3", "q4", "q5"]
    assert all(f["retry_after"] >= 1 for f in refused)
    assert answered == 3
    _sessions, messages = await count_rows()
    assert messages == 6  # three questions, three answers; nothing of the refused ones


# -- finding 4: session_init is limited ----------------------------------------------------


async def test_session_init_past_the_session_start_rate_is_rate_limited(connect):
    with settings_with(SESSION_START_RATE="3/m"):
        client, _ = await connect()
        replies = [await client.start() for _ in range(5)]
    assert [r["type"] for r in replies] == ["session"] * 3 + ["error"] * 2
    assert replies[-1]["code"] == "rate_limited"
    assert replies[-1]["retry_after"] >= 1
    sessions, _messages = await count_rows()
    assert sessions == 3


async def test_session_start_rate_counts_per_visitor_across_connections(connect):
    with settings_with(SESSION_START_RATE="2/m"):
        first, _ = await connect()
        await first.start()
        await first.start()
        second, _ = await connect()
        reply = await second.start()
        other, _ = await connect(client=("198.51.100.1", 4000))
        elsewhere = await other.start()
    assert reply["code"] == "rate_limited"
    assert elsewhere["type"] == "session"


async def test_session_start_rate_none_does_not_limit(connect):
    with settings_with(SESSION_START_RATE=None):
        client, _ = await connect()
        replies = [await client.start() for _ in range(25)]
    assert {r["type"] for r in replies} == {"session"}


# -- finding 8: budgets are spent atomically, partial answers charged ---------------------


async def test_parallel_answers_cannot_spend_one_budget_twice():
    import asyncio

    from sophie_chat import backends
    from sophie_chat.engine import run_turn
    from sophie_chat.exceptions import QuotaExceeded
    from sophie_chat.models import TokenUsage
    from tests.support.turns import RecordingSink, new_session, turn_request

    sessions = [await new_session() for _ in range(3)]
    requests = [turn_request(s, f"Question {n}?") for n, s in enumerate(sessions)]
    # One visitor (one IP, one budget) in three conversations at once.
    visitor = requests[0].visitor
    requests = [dataclasses.replace(r, visitor=visitor) for r in requests]
    with settings_with(DAILY_TOKEN_BUDGET_IP=2000, RESPONSE_CACHE={"ENABLED": False}):
        model = backends.llm()
        model.delay = 0.02
        model.enqueue(*["word " * 30] * 3)
        results = await asyncio.gather(
            *(run_turn(r, RecordingSink()) for r in requests), return_exceptions=True
        )
    refused = [r for r in results if isinstance(r, QuotaExceeded)]
    assert len(model.requests) == 1
    assert len(refused) == 2
    usage = await TokenUsage.objects.aget(subject=f"ip:{visitor.ip}")
    assert 0 < usage.tokens <= 2000


async def test_an_answer_that_fails_mid_stream_is_charged():
    from sophie_chat import backends
    from sophie_chat.llm.base import LLMUnavailable
    from sophie_chat.models import TokenUsage
    from tests.support.turns import new_session, turn

    session = await new_session()
    with settings_with(DAILY_TOKEN_BUDGET_IP=100_000, RESPONSE_CACHE={"ENABLED": False}):
        model = backends.llm()
        model.enqueue_error(LLMUnavailable("cut"), text="one two three four five six", after=2)
        sink = await turn(session, "Will you fail?")
    assert sink.answer().metadata["fallback"] is True
    usage = [row async for row in TokenUsage.objects.all()]
    assert len(usage) == 1
    assert usage[0].tokens > 0


# -- finding 10: origins by scheme, host and port --------------------------------------------


@pytest.mark.parametrize(
    ("origin", "welcomed"),
    [
        (b"https://shop.example.com", True),
        (b"https://shop.example.com:443", True),
        (b"http://shop.example.com", False),  # another scheme
        (b"https://shop.example.com:8443", False),  # another port
        (b"https://evil.example.com", False),
        (None, False),
    ],
)
async def test_allowed_origins_compare_scheme_host_and_port(connect, origin, welcomed):
    headers = [(b"origin", origin)] if origin else []
    with settings_with(ALLOWED_ORIGINS=["https://shop.example.com"]):
        _client, first = await connect(headers=headers)
    assert first["type"] == ("welcome" if welcomed else "error")
    if not welcomed:
        assert first["code"] == "forbidden"


async def test_without_allowed_origins_any_origin_reaches_the_consumer(connect):
    # Today's behaviour: the host's AllowedHostsOriginValidator decides, by host name.
    _client, first = await connect(headers=[(b"origin", b"http://elsewhere:1234")])
    assert first["type"] == "welcome"


# -- finding 10: resume tokens expire; adoption needs the same client -------------------------


async def test_a_resume_token_older_than_its_lifetime_is_session_not_found(connect, monkeypatch):
    import time

    from sophie_chat.security import make_resume_token

    client, _ = await connect()
    first = await client.start()
    now = time.time()
    monkeypatch.setattr(time, "time", lambda: now - 3 * 3600)
    old_token = make_resume_token(first["session_id"])
    monkeypatch.undo()
    with settings_with(RESUME_TOKEN_MAX_AGE_HOURS=2):
        reply = await client.start(resume_token=old_token)
        fresh = await client.start(resume_token=first["resume_token"])
    assert reply["code"] == "session_not_found"
    assert fresh["type"] == "session"


async def test_a_logged_in_user_does_not_adopt_a_conversation_started_elsewhere(connect):
    from tests.support.records import make_user

    anonymous, _ = await connect(client=("192.0.2.10", 5000))
    first = await anonymous.start()
    user = await make_user()
    elsewhere, _ = await connect(user=user, client=("198.51.100.20", 6000))
    reply = await elsewhere.start(resume_token=first["resume_token"])
    assert reply["code"] == "session_not_found"
    session = await ChatSession.objects.aget(pk=first["session_id"])
    assert session.user_id is None
    # The visitor who started it, logging in on the same connection's address, adopts it.
    same, _ = await connect(user=user, client=("192.0.2.10", 5001))
    adopted = await same.start(resume_token=first["resume_token"])
    assert adopted["resumed"] is True


# -- finding 6: what can never succeed is invalid_message, on every database ---------------


async def test_nul_and_surrogates_are_invalid_or_cleaned_never_service_unavailable(
    connect, dummy_llm
):
    client, _ = await connect()
    session = await client.start(
        context={"page_title": "a\ud800b", "extra": {"plan\u0000": "x\u0000y", "n": ["\udfff"]}}
    )
    assert session["type"] == "session"
    stored = await ChatSession.objects.aget(pk=session["session_id"])
    assert stored.context["extra"] == {"plan": "xy", "n": [""]}
    for client_id in ("a\u0000b", "\ud800"):
        # json.dumps escapes both: the frame is ASCII, as a browser's would be.
        await client.send({"type": "message", "content": "Hello", "client_message_id": client_id})
        error = await client.receive()
        assert error["code"] == "invalid_message"
        assert "retry_after" not in error
    frames = await client.ask("Still here?", "ok-1")
    assert frames[-1]["type"] == "stream_end"


async def test_messages_refused_by_the_rate_limit_write_nothing_until_it_lets_go(
    connect, dummy_llm
):
    from sophie_chat.models import ChatAnalytics, ChatErrorEvent

    with settings_with(RATE_LIMIT={"OPTIONS": {"rate": "1/m", "burst": None}}):
        client, _ = await connect()
        session = await client.start()
        assert (await client.ask("First question", "a0"))[-1]["type"] == "stream_end"
        for number in range(1, 21):
            frame = {"type": "message", "content": "Again?", "client_message_id": f"a{number}"}
            await client.send(frame)
        errors = [await client.receive() for _ in range(20)]
    assert {e["code"] for e in errors} == {"rate_limited"}
    assert all(0 < e["retry_after"] <= 60 for e in errors)
    assert sorted(e["reply_to"] for e in errors) == sorted(f"a{n}" for n in range(1, 21))
    analytics = await ChatAnalytics.objects.aget(session_id=session["session_id"])
    assert analytics.rate_limited == 1
    assert await ChatErrorEvent.objects.acount() == 1
    assert await ChatMessage.objects.acount() == 2
