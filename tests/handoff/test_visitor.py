"""The visitor's side of a handoff, through the chat consumer: frames to every tab,
Sophie quiet while a person holds the conversation, and never a dead end."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine

from sophie_chat import backends, handoff
from sophie_chat.models import ChatMessage, ChatSession, Handoff, Lead
from tests.support.handoff import Listener, handoff_settings, make_agent
from tests.support.overrides import settings_with

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("_handoff_on")]


@pytest.fixture
def _handoff_on():
    with settings_with(HANDOFF=handoff_settings()):
        yield


async def two_tabs(connect):
    first, welcome = await connect()
    session = await first.start()
    second, _ = await connect()
    resumed = await second.start(resume_token=session["resume_token"])
    assert resumed["type"] == "session"
    return first, second, session, welcome


async def open_handoff_of(session_id: str) -> Handoff:
    return await Handoff.objects.select_related("agent").aget(
        session_id=session_id, state__in=Handoff.OPEN
    )


async def test_welcome_says_handoff_is_available(connect):
    _client, welcome = await connect()

    assert welcome["features"]["handoff"] is True


async def test_without_handoff_the_request_is_refused_with_a_protocol_error(connect):
    with settings_with(HANDOFF=handoff_settings(ENABLED=False)):
        client, welcome = await connect()
        await client.start()
        await client.send({"type": "handoff_request"})
        reply = await client.receive()

    assert welcome["features"]["handoff"] is False
    assert reply["type"] == "error"
    assert reply["code"] == "invalid_message"


async def test_asking_for_a_person_tells_every_tab_its_place_in_line(connect):
    first, second, session, _ = await two_tabs(connect)

    await first.send({"type": "handoff_request", "reason": "My sink is leaking"})

    expected = {"type": "handoff", "state": "waiting", "position": 1}
    assert await first.receive() == expected
    assert await second.receive() == expected
    assert await first.nothing_more()
    stored = await open_handoff_of(session["session_id"])
    assert stored.reason == "My sink is leaking"


async def test_cancel_while_waiting(connect):
    first, second, _session, _ = await two_tabs(connect)
    await first.send({"type": "handoff_request"})
    await first.receive()
    await second.receive()

    await second.send({"type": "handoff_cancel"})

    ended = {"type": "handoff", "state": "ended", "cancelled": True}
    assert await second.receive() == ended
    assert await first.receive() == ended
    assert not await Handoff.objects.filter(state__in=Handoff.OPEN).aexists()


async def test_sophie_stays_quiet_while_a_person_holds_the_conversation(connect, dummy_llm):
    first, second, session, _ = await two_tabs(connect)
    await first.send({"type": "handoff_request"})
    await first.receive()
    await second.receive()
    found = await open_handoff_of(session["session_id"])
    agent = await make_agent("ana", first_name="Ana")
    inbox = await Listener.join()
    assert await handoff.claim(found.pk, agent)
    active = {"type": "handoff", "state": "active", "agent": {"name": "Ana"}}
    assert await first.receive() == active
    assert await second.receive() == active

    await first.send({"type": "message", "content": "Are you there?", "client_message_id": "q1"})

    ack = await first.receive()
    assert ack["type"] == "message"
    assert ack["message"]["content"] == "Are you there?"
    assert (await second.receive())["message"]["id"] == ack["message"]["id"]
    assert await first.nothing_more(0.3)
    assert dummy_llm.requests == []
    event = await inbox.until(lambda e: e["type"] == "inbox.message")
    assert event["message"]["id"] == ack["message"]["id"]
    assert event["handoff_id"] == found.pk


async def test_the_agents_messages_and_typing_reach_every_tab(connect):
    first, second, session, _ = await two_tabs(connect)
    await first.send({"type": "handoff_request"})
    await first.receive()
    await second.receive()
    found = await open_handoff_of(session["session_id"])
    agent = await make_agent("ana", first_name="Ana")
    await handoff.claim(found.pk, agent)
    await first.receive()
    await second.receive()

    await handoff.agent_typing(found.pk, agent)
    await handoff.send_agent_message(found.pk, agent, "<b>Hello</b>, I'm Ana")

    for tab in (first, second):
        assert await tab.receive() == {"type": "typing", "is_typing": True, "role": "agent"}
        frame = await tab.receive()
        assert frame["type"] == "message"
        assert frame["message"]["role"] == "agent"
        assert frame["message"]["agent"] == {"name": "Ana"}
        assert frame["message"]["content"] == "<b>Hello</b>, I'm Ana"


async def test_the_visitors_typing_reaches_the_inbox(connect):
    client, _ = await connect()
    session = await client.start()
    await client.send({"type": "handoff_request"})
    await client.receive()
    inbox = await Listener.join()

    await client.send({"type": "typing", "is_typing": True})

    event = await inbox.next()
    assert event["type"] == "inbox.typing"
    assert event["role"] == "user"
    assert event["session_id"] == session["session_id"]


async def test_a_tab_that_resumes_gets_the_state_and_the_agents_messages(connect):
    client, _ = await connect()
    session = await client.start()
    await client.send({"type": "handoff_request"})
    await client.receive()
    found = await open_handoff_of(session["session_id"])
    agent = await make_agent("ana", first_name="Ana")
    await handoff.claim(found.pk, agent)
    await handoff.send_agent_message(found.pk, agent, "Hi, Ana here")
    await client.close()

    again, _ = await connect()
    resumed = await again.start(resume_token=session["resume_token"])

    assert resumed["handoff"] == {"state": "active", "agent": {"name": "Ana"}}
    last = resumed["history"][-1]
    assert last["role"] == "agent"
    assert last["agent"] == {"name": "Ana"}


async def test_typing_talk_to_a_human_asks_for_one_without_the_model(connect, dummy_llm):
    client, _ = await connect()
    session = await client.start()

    frames = await client.ask("Quero falar com um atendente, por favor", "p1")

    kinds = [frame["type"] for frame in frames]
    assert {"type": "handoff", "state": "waiting", "position": 1} in frames
    assert kinds[-1] == "stream_end"
    assert frames[-1]["message"]["metadata"]["handoff"] == "waiting"
    assert dummy_llm.requests == []
    assert await handoff.open_handoff(session["session_id"]) is not None


async def test_when_the_agent_ends_sophie_answers_again_and_the_rating_is_the_persons(
    connect, dummy_llm
):
    client, _ = await connect()
    session = await client.start()
    await client.send({"type": "handoff_request"})
    await client.receive()
    found = await open_handoff_of(session["session_id"])
    agent = await make_agent()
    await handoff.claim(found.pk, agent)
    await client.receive()

    assert await handoff.end(found.pk, agent)
    assert await client.receive() == {"type": "handoff", "state": "ended"}
    dummy_llm.enqueue("Sophie again.")
    frames = await client.ask("Thanks!", "after")
    await client.send({"type": "session_rate", "score": 5})
    await client.receive_until("ack")

    assert frames[-1]["message"]["content"] == "Sophie again."
    assert (await Handoff.objects.aget(pk=found.pk)).satisfaction_score == 5
    rated = await ChatSession.objects.aget(pk=session["session_id"])
    assert rated.satisfaction_score == 5


async def test_out_of_hours_the_visitor_can_leave_a_message(connect):
    hours = {"mon": [("09:00", "18:00")]}
    client, _ = await connect()
    session = await client.start()
    with (
        settings_with(HANDOFF=handoff_settings(HOURS=hours, TIMEZONE="UTC")),
        time_machine.travel(dt.datetime(2026, 12, 7, 20, 0, tzinfo=dt.UTC), tick=False),
    ):
        await client.send({"type": "handoff_request"})
        unavailable = await client.receive()

        await client.send(
            {
                "type": "handoff_leave_message",
                "name": "Rita",
                "contact": "rita@example.com",
                "message": "Please call me about the leak",
            }
        )
        ack = await client.receive()

    assert unavailable == {
        "type": "handoff",
        "state": "unavailable",
        "opens_at": "2026-12-14T09:00:00+00:00",
    }
    assert ack == {"type": "ack", "of": "handoff_leave_message"}
    lead = await Lead.objects.aget(session_id=session["session_id"])
    assert (lead.source, lead.name, lead.email) == ("handoff", "Rita", "rita@example.com")
    assert lead.details == "Please call me about the leak"


async def test_a_message_left_without_a_contact_is_refused(connect):
    client, _ = await connect()
    await client.start()

    await client.send({"type": "handoff_leave_message", "contact": "tomorrow"})
    reply = await client.receive()

    assert reply["type"] == "error"
    assert reply["code"] == "invalid_message"
    assert not await Lead.objects.aexists()


async def test_agent_messages_stay_in_the_conversation_history(connect):
    client, _ = await connect()
    session = await client.start()
    await client.send({"type": "handoff_request"})
    await client.receive()
    found = await open_handoff_of(session["session_id"])
    agent = await make_agent()
    await handoff.claim(found.pk, agent)
    await handoff.send_agent_message(found.pk, agent, "Noted.")

    stored = await ChatMessage.objects.aget(session_id=session["session_id"], role="agent")

    assert stored.agent_id == agent.pk


async def test_closing_the_conversation_ends_the_persons_conversation(connect):
    client, _ = await connect()
    session = await client.start()
    await client.send({"type": "handoff_request"})
    await client.receive()
    found = await open_handoff_of(session["session_id"])
    await handoff.claim(found.pk, await make_agent())
    await client.receive()
    inbox = await Listener.join()

    await client.send({"type": "session_close"})

    event = await inbox.until(lambda e: e["type"] == "inbox.changed")
    assert event["state"] == "ended"
    stored = await Handoff.objects.aget(pk=found.pk)
    assert (stored.state, stored.ended_by_id) == ("ended", None)


async def test_the_model_calls_request_handoff_and_every_tab_hears_the_state(connect, dummy_llm):
    dummy_llm.enqueue_tool_calls(("request_handoff", {"reason": "disputed charge"}))
    dummy_llm.enqueue("A person from our team will join you here.")
    client, _ = await connect()
    session = await client.start()

    frames = await client.ask("I was charged twice and nobody helps me", "d1")

    assert {"type": "handoff", "state": "waiting", "position": 1} in frames
    assert frames[-1]["message"]["content"] == "A person from our team will join you here."
    offered = [tool.name for tool in dummy_llm.requests[0].tools]
    assert "request_handoff" in offered
    result = dummy_llm.requests[1].messages[-1]
    assert result.role == "tool"
    assert '"state": "waiting"' in result.content
    stored = await open_handoff_of(session["session_id"])
    assert stored.reason == "disputed charge"


async def test_asking_over_and_over_is_rate_limited(connect):
    client, _ = await connect()
    await client.start()

    replies = []
    # The default rate: 10 a minute, 3 more in a burst.
    for _ in range(8):
        await client.send({"type": "handoff_request"})
        replies.append(await client.receive())
        await client.send({"type": "handoff_cancel"})
        replies.append(await client.receive())

    codes = [reply.get("code") for reply in replies if reply["type"] == "error"]
    assert "rate_limited" in codes
    assert await Handoff.objects.acount() < 8


async def test_a_tab_resuming_a_waiting_conversation_keeps_its_timeout(connect):
    client, _ = await connect()
    session = await client.start()
    await client.send({"type": "handoff_request"})
    await client.receive()
    # As if the process that held the timer had restarted.
    for timer in list(handoff.service._timers.values()):
        timer.cancel()
    await client.close()

    with settings_with(HANDOFF=handoff_settings(WAIT_TIMEOUT=0.3)):
        again, _ = await connect()
        resumed = await again.start(resume_token=session["resume_token"])
        assert resumed["handoff"]["state"] == "waiting"
        later = await again.receive(timeout=3)

    assert later["type"] == "handoff"
    assert later["state"] == "unavailable"


async def test_out_of_hours_the_model_is_told_it_may_take_the_details_with_capture_lead(
    connect,
):
    hours = {"mon": [("09:00", "18:00")]}
    with (
        settings_with(
            HANDOFF=handoff_settings(HOURS=hours, TIMEZONE="UTC"),
            TOOLS=["sophie_chat.tools.leads.capture_lead"],
        ),
        time_machine.travel(dt.datetime(2026, 12, 7, 20, 0, tzinfo=dt.UTC), tick=False),
    ):
        model = backends.llm()  # the settings' own model (changing settings forgets it)
        model.enqueue_tool_calls(("request_handoff", {"reason": "leak"}))
        model.enqueue("Our team is back on Monday; may I take your details?")
        client, _ = await connect()
        await client.start()
        frames = await client.ask("I need someone for my leak", "o1")

    unavailable = {
        "type": "handoff",
        "state": "unavailable",
        "opens_at": "2026-12-14T09:00:00+00:00",
    }
    assert unavailable in frames
    result = model.requests[1].messages[-1].content
    assert "capture_lead" in result
    assert "2026-12-14T09:00:00+00:00" in result


async def test_hostile_text_in_a_left_message_is_stored_clean(connect):
    client, _ = await connect()
    session = await client.start()

    await client.send(
        {
            "type": "handoff_leave_message",
            "name": "Rita\x00\u202e <script>",
            "contact": "+55 41 9\x00 9999-0000",
            "message": "\ud800call me\x07",
        }
    )
    reply = await client.receive()

    assert reply == {"type": "ack", "of": "handoff_leave_message"}
    lead = await Lead.objects.aget(session_id=session["session_id"])
    assert "\x00" not in lead.name + lead.phone + lead.details
    assert lead.name.startswith("Rita")
    assert "call me" in lead.details
