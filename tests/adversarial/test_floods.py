"""Floods in process: sessions and messages cost bounded rows.

The floods against real server processes (messages, connections, a reader
that never reads, with the server's memory measured) are in
tests/e2e/test_adversarial.py.
"""

from __future__ import annotations

import pytest

from sophie_chat.models import ChatAnalytics, ChatMessage, ChatSession
from tests.support.overrides import settings_with

pytestmark = pytest.mark.django_db(transaction=True)


async def test_a_session_flood_creates_at_most_the_session_start_rate(connect):
    with settings_with(SESSION_START_RATE="20/m"):
        client, _ = await connect()
        for _ in range(300):
            await client.send({"type": "session_init"})
        replies = [await client.receive() for _ in range(300)]
    assert sum(r["type"] == "session" for r in replies) == 20
    assert {r["code"] for r in replies if r["type"] == "error"} == {"rate_limited"}
    assert await ChatSession.objects.acount() == 20
    assert await ChatAnalytics.objects.acount() <= 20


async def test_a_message_flood_on_one_connection_stores_only_what_is_answered(connect, dummy_llm):
    dummy_llm.delay = 0.01
    with settings_with(MAX_QUEUED_MESSAGES=3):
        client, _ = await connect()
        await client.start()
        for number in range(200):
            await client.send(
                {"type": "message", "content": "x" * 2000, "client_message_id": f"m{number}"}
            )
        refused = answered = 0
        while refused + answered < 200:
            frame = await client.receive(timeout=10)
            refused += frame.get("code") == "rate_limited"
            answered += frame["type"] == "stream_end"
    assert refused >= 150
    assert await ChatMessage.objects.acount() == 2 * answered
