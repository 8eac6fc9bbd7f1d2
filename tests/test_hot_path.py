"""What a turn leaves out when it can (docs/performance.md), and what it still does."""

from __future__ import annotations

from datetime import timedelta

import pytest
from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.utils import timezone

from sophie_chat import backends
from sophie_chat.models import ChatMessage, ChatSession

pytestmark = pytest.mark.django_db(transaction=True)


def deltas_of(frames: list[dict]) -> list[str]:
    return [f["delta"] for f in frames if f["type"] == "stream_delta"]


async def test_an_answer_the_model_gives_at_once_arrives_as_two_deltas(connect, dummy_llm):
    dummy_llm.enqueue("Cleaning a two-bedroom flat takes about three hours.")
    client, _ = await connect()
    await client.start()

    frames = await client.ask("How long does cleaning take?", "h-1")

    deltas = deltas_of(frames)
    assert deltas[0] == "Cleaning"
    assert len(deltas) == 2
    assert "".join(deltas) == frames[-1]["message"]["content"]


async def test_deltas_the_model_sends_apart_are_sent_one_by_one(connect, dummy_llm):
    dummy_llm.delay = 0.02
    dummy_llm.enqueue("one two three four")
    client, _ = await connect()
    await client.start()

    frames = await client.ask("Count to four", "h-2")

    assert deltas_of(frames) == ["one", " two", " three", " four"]


async def test_a_message_sent_twice_on_one_connection_is_answered_once(connect, dummy_llm):
    dummy_llm.enqueue("The answer.")
    client, _ = await connect()
    session = await client.start()

    first = await client.ask("Question", "same")
    again = await client.ask("Question", "same")

    assert again[0]["message"]["id"] == first[0]["message"]["id"]
    assert again[-1]["message"]["id"] == first[-1]["message"]["id"]
    assert len(dummy_llm.requests) == 1
    assert await ChatMessage.objects.filter(session_id=session["session_id"]).acount() == 2


async def test_a_conversation_alone_in_its_process_sends_nothing_to_its_group(
    connect, dummy_llm, monkeypatch
):
    layer = get_channel_layer()
    assert isinstance(layer, InMemoryChannelLayer)
    sent = []
    original = layer.group_send

    async def spy(group, message):
        sent.append(message["frame"]["type"])
        await original(group, message)

    monkeypatch.setattr(layer, "group_send", spy)
    dummy_llm.enqueue("Alone.", "Together.")
    alone, _ = await connect()
    session = await alone.start()
    await alone.ask("Anyone there?", "g-1")
    assert sent == []

    other_tab, _ = await connect()
    await other_tab.start(session_id=session["session_id"], resume_token=session["resume_token"])
    await alone.ask("And now?", "g-2")
    assert "stream_end" in sent
    assert (await other_tab.receive())["type"] == "message"


async def test_a_message_soon_after_another_leaves_the_conversation_expiry_alone(
    connect, dummy_llm
):
    dummy_llm.enqueue("One.", "Two.")
    client, _ = await connect()
    session = await client.start()
    await client.ask("First", "e-1")
    expiry = (await ChatSession.objects.aget(pk=session["session_id"])).expires_at

    await client.ask("Second", "e-2")

    assert (await ChatSession.objects.aget(pk=session["session_id"])).expires_at == expiry


async def test_a_message_pushes_back_an_expiry_set_over_a_minute_ago(connect, dummy_llm):
    dummy_llm.enqueue("Still here.")
    client, _ = await connect()
    session = await client.start()
    soon = timezone.now() + timedelta(hours=1)
    await ChatSession.objects.filter(pk=session["session_id"]).aupdate(expires_at=soon)

    await client.ask("Hello again", "e-3")

    expiry = (await ChatSession.objects.aget(pk=session["session_id"])).expires_at
    assert expiry > soon + timedelta(hours=20)


@pytest.mark.redis
async def test_a_conversation_in_one_tab_sends_nothing_through_redis(connect):
    # On channels-redis a group send is four round trips and comes back to its
    # sender; one round trip tells that the conversation is open in one tab only.
    import os
    import secrets

    from channels_redis.core import RedisChannelLayer
    from django.test import override_settings

    layer_settings = {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            "hosts": [os.environ["REDIS_URL"]],
            "prefix": f"sophie-test-{secrets.token_hex(4)}",
        },
    }
    sent: list[str] = []
    original = RedisChannelLayer.group_send

    async def spy(self, group, message):
        sent.append(message.get("frame", {}).get("type", message["type"]))
        await original(self, group, message)

    with override_settings(CHANNEL_LAYERS={"default": layer_settings}):
        backends.llm().enqueue("Alone.", "Together.")
        RedisChannelLayer.group_send = spy
        try:
            alone, _ = await connect()
            session = await alone.start()
            await alone.ask("Anyone there?", "r-1")
            assert sent == []

            other_tab, _ = await connect()
            await other_tab.start(
                session_id=session["session_id"], resume_token=session["resume_token"]
            )
            await alone.ask("And now?", "r-2")
            frames = await other_tab.receive_until("stream_end")
        finally:
            RedisChannelLayer.group_send = original
            await get_channel_layer().flush()

    assert {"message", "typing", "stream_end"} <= set(sent)
    assert frames[0]["message"]["content"] == "And now?"
    assert frames[-1]["message"]["content"] == "Together."
