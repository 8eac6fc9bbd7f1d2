"""The handoff core: states as conditional UPDATEs, and who hears of each change."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
import time_machine
from django.core import mail
from django.core.exceptions import PermissionDenied

from sophie_chat import handoff
from sophie_chat.groups import session_group
from sophie_chat.models import ChatMessage, Handoff
from sophie_chat.signals import handoff_requested
from tests.support.handoff import Listener, handoff_settings, make_agent, make_session
from tests.support.overrides import settings_with

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("_handoff_on"),
]

# A Monday.
MONDAY_10 = dt.datetime(2026, 12, 7, 10, 0, tzinfo=dt.UTC)
HOURS = {"mon": [("09:00", "12:00"), ("13:00", "18:00")], "tue": [("09:00", "18:00")]}


@pytest.fixture
def _handoff_on():
    with settings_with(HANDOFF=handoff_settings()):
        yield


async def test_a_request_waits_and_the_inbox_and_every_tab_hear_of_it():
    session = await make_session()
    inbox = await Listener.join()
    tabs = await Listener.join(session_group(str(session.id)))

    found = await handoff.request(session, reason="leaking pipe")

    assert found.state == Handoff.State.WAITING
    assert found.reason == "leaking pipe"
    changed = await inbox.next()
    assert changed == {
        "type": "inbox.changed",
        "handoff_id": found.pk,
        "session_id": str(session.id),
        "state": "waiting",
    }
    relay = await tabs.next()
    assert relay["frame"] == {"type": "handoff", "state": "waiting", "position": 1}


async def test_asking_twice_returns_the_open_handoff():
    session = await make_session()

    first = await handoff.request(session)
    second = await handoff.request(str(session.id))

    assert second.pk == first.pk
    assert await Handoff.objects.acount() == 1


async def test_positions_follow_the_order_of_asking():
    first = await handoff.request(await make_session())
    second = await handoff.request(await make_session())

    assert await handoff.waiting_position(first) == 1
    assert await handoff.waiting_position(second) == 2


async def test_two_agents_claiming_at_once_have_one_winner():
    found = await handoff.request(await make_session())
    ana, bruno = await make_agent("ana"), await make_agent("bruno")

    results = await asyncio.gather(handoff.claim(found.pk, ana), handoff.claim(found.pk, bruno))

    assert sorted(results) == [False, True]
    stored = await Handoff.objects.aget(pk=found.pk)
    assert stored.state == Handoff.State.ACTIVE
    assert stored.agent_id == (ana.pk if results[0] else bruno.pk)
    assert stored.claimed_at is not None


async def test_a_user_without_the_permission_cannot_claim():
    found = await handoff.request(await make_session())
    staff = await make_agent("carla", permitted=False)

    with pytest.raises(PermissionDenied):
        await handoff.claim(found.pk, staff)
    assert (await Handoff.objects.aget(pk=found.pk)).state == Handoff.State.WAITING


async def test_the_visitor_hears_the_agent_claim_and_the_queue_move_up():
    ahead = await handoff.request(await make_session())
    behind_session = await make_session()
    behind = await handoff.request(behind_session)
    tabs = await Listener.join(session_group(str(behind_session.id)))
    agent = await make_agent("ana", first_name="Ana", last_name="Souza")

    assert await handoff.claim(ahead.pk, agent)

    event = await tabs.next()
    assert event["frame"] == {"type": "handoff", "state": "waiting", "position": 1}
    assert await handoff.claim(behind.pk, agent)
    event = await tabs.next()
    assert event["frame"] == {"type": "handoff", "state": "active", "agent": {"name": "Ana Souza"}}


async def test_agent_messages_are_stored_with_their_author_and_reach_the_visitor():
    session = await make_session()
    found = await handoff.request(session)
    agent = await make_agent("ana", first_name="Ana")
    await handoff.claim(found.pk, agent)
    tabs = await Listener.join(session_group(str(session.id)))
    inbox = await Listener.join()

    message = await handoff.send_agent_message(found.pk, agent, "  Hello, I'm Ana.  ")

    assert message.role == ChatMessage.Role.AGENT
    assert message.agent_id == agent.pk
    assert message.content == "Hello, I'm Ana."
    frame = (await tabs.next())["frame"]
    assert frame["type"] == "message"
    assert frame["message"]["role"] == "agent"
    assert frame["message"]["agent"] == {"name": "Ana"}
    assert frame["message"]["content"] == "Hello, I'm Ana."
    event = await inbox.next()
    assert event["type"] == "inbox.message"
    assert event["message"]["id"] == str(message.id)
    stored = await Handoff.objects.aget(pk=found.pk)
    assert stored.first_reply_at == message.created_at


async def test_only_the_agent_holding_it_may_answer():
    found = await handoff.request(await make_session())
    ana, bruno = await make_agent("ana"), await make_agent("bruno")
    await handoff.claim(found.pk, ana)

    with pytest.raises(handoff.NotHeld):
        await handoff.send_agent_message(found.pk, bruno, "Hi")
    with pytest.raises(handoff.InvalidText):
        await handoff.send_agent_message(found.pk, ana, "   ")
    assert not await ChatMessage.objects.filter(role="agent").aexists()


async def test_agent_typing_reaches_the_visitor_with_the_agent_role():
    session = await make_session()
    found = await handoff.request(session)
    agent = await make_agent()
    await handoff.claim(found.pk, agent)
    tabs = await Listener.join(session_group(str(session.id)))

    assert await handoff.agent_typing(found.pk, agent)

    frame = (await tabs.next())["frame"]
    assert frame == {"type": "typing", "is_typing": True, "role": "agent"}


async def test_transfer_moves_the_conversation_to_another_agent():
    session = await make_session()
    found = await handoff.request(session)
    ana, bruno = await make_agent("ana"), await make_agent("bruno")
    await handoff.claim(found.pk, ana)
    tabs = await Listener.join(session_group(str(session.id)))

    assert not await handoff.transfer(found.pk, bruno, ana)  # bruno does not hold it
    assert await handoff.transfer(found.pk, ana, bruno)

    assert (await Handoff.objects.aget(pk=found.pk)).agent_id == bruno.pk
    frame = (await tabs.next())["frame"]
    assert frame["agent"] == {"name": "bruno"}
    with pytest.raises(handoff.NotHeld):
        await handoff.send_agent_message(found.pk, ana, "still mine?")


async def test_end_closes_it_once():
    session = await make_session()
    found = await handoff.request(session)
    agent = await make_agent()
    await handoff.claim(found.pk, agent)

    assert await handoff.end(found.pk, agent)
    assert not await handoff.end(found.pk, agent)

    stored = await Handoff.objects.aget(pk=found.pk)
    assert stored.state == Handoff.State.ENDED
    assert stored.ended_by_id == agent.pk
    assert await handoff.open_handoff(str(session.id)) is None


async def test_cancel_only_while_waiting():
    session = await make_session()
    found = await handoff.request(session)

    assert await handoff.cancel(session)
    assert not await handoff.cancel(session)
    assert not await handoff.claim(found.pk, await make_agent())
    assert (await Handoff.objects.aget(pk=found.pk)).state == Handoff.State.CANCELLED


async def test_out_of_hours_the_visitor_is_told_when_the_team_is_back():
    session = await make_session()
    with (
        settings_with(HANDOFF=handoff_settings(HOURS=HOURS, TIMEZONE="America/Sao_Paulo")),
        time_machine.travel(MONDAY_10.replace(hour=23), tick=False),
    ):
        found = await handoff.request(session)
        frame = await handoff.state_frame(found)

    assert found.state == Handoff.State.UNAVAILABLE
    # Monday 23:00 UTC is 20:00 in São Paulo; Tuesday 09:00 there is 12:00 UTC.
    assert found.opens_at == dt.datetime(2026, 12, 8, 12, 0, tzinfo=dt.UTC)
    assert frame == {
        "type": "handoff",
        "state": "unavailable",
        "opens_at": found.opens_at.isoformat(),
    }


@pytest.mark.parametrize(
    ("utc_time", "expected"),
    [
        ((10, 0), (True, None)),  # 10:00 UTC is 10:00 with TIMEZONE UTC
        ((12, 30), (False, dt.datetime(2026, 12, 7, 13, 0, tzinfo=dt.UTC))),  # lunch
        ((18, 0), (False, dt.datetime(2026, 12, 8, 9, 0, tzinfo=dt.UTC))),  # end is exclusive
    ],
)
def test_business_hours(utc_time, expected):
    now = MONDAY_10.replace(hour=utc_time[0], minute=utc_time[1])
    with settings_with(HANDOFF=handoff_settings(HOURS=HOURS, TIMEZONE="UTC")):
        assert handoff.is_open_now(now) == expected


def test_holidays_are_closed_all_day():
    with settings_with(
        HANDOFF=handoff_settings(HOURS=HOURS, TIMEZONE="UTC", HOLIDAYS=["2026-12-07"])
    ):
        assert handoff.is_open_now(MONDAY_10) == (
            False,
            dt.datetime(2026, 12, 8, 9, 0, tzinfo=dt.UTC),
        )


async def test_nobody_claiming_in_time_makes_it_unavailable():
    session = await make_session()
    tabs = await Listener.join(session_group(str(session.id)))
    with settings_with(HANDOFF=handoff_settings(WAIT_TIMEOUT=0.2)):
        found = await handoff.request(session)
        await tabs.next()  # waiting
        frame = (await tabs.next(timeout=3))["frame"]

    assert frame["state"] == "unavailable"
    assert (await Handoff.objects.aget(pk=found.pk)).state == Handoff.State.ABANDONED


async def test_a_claim_after_the_timeout_finds_it_expired_even_without_the_timer():
    session = await make_session()
    found = await handoff.request(session)
    # As if the process that held the timer had restarted.
    for timer in list(handoff.service._timers.values()):
        timer.cancel()
    await Handoff.objects.filter(pk=found.pk).aupdate(
        requested_at=found.requested_at - dt.timedelta(seconds=301)
    )

    assert not await handoff.claim(found.pk, await make_agent())
    assert (await Handoff.objects.aget(pk=found.pk)).state == Handoff.State.ABANDONED


async def test_the_signal_and_the_staff_e_mail_tell_of_a_waiting_visitor():
    received = []

    def receiver(sender, handoff, **kwargs):
        received.append(handoff.pk)

    handoff_requested.connect(receiver)
    try:
        with settings_with(HANDOFF=handoff_settings(NOTIFY=["team@example.com"])):
            found = await handoff.request(await make_session(), reason="no-show")
    finally:
        handoff_requested.disconnect(receiver)

    assert received == [found.pk]
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["team@example.com"]
    assert "no-show" in mail.outbox[0].body


async def test_listing_the_open_handoffs_expires_the_overdue_first():
    late = await handoff.request(await make_session())
    fresh = await handoff.request(await make_session())
    for timer in list(handoff.service._timers.values()):
        timer.cancel()
    await Handoff.objects.filter(pk=late.pk).aupdate(
        requested_at=late.requested_at - dt.timedelta(seconds=301)
    )

    listed = await handoff.open_handoffs()

    assert [h.pk for h in listed] == [fresh.pk]
    assert (await Handoff.objects.aget(pk=late.pk)).state == Handoff.State.ABANDONED


async def test_in_hours_with_nobody_available_the_request_is_unavailable_at_once():
    async def nobody() -> bool:
        return False

    handoff.availability(nobody)
    try:
        found = await handoff.request(await make_session())
    finally:
        handoff.forget_availability(nobody)

    assert found.state == Handoff.State.UNAVAILABLE
    assert found.opens_at is None
    assert await handoff.state_frame(found) == {"type": "handoff", "state": "unavailable"}
    assert (await handoff.request(await make_session())).state == Handoff.State.WAITING
