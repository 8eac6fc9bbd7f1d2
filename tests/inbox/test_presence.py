"""The inbox's presence as the handoff's availability check (opt-in, docs/handoff.md)."""

from __future__ import annotations

import pytest

from sophie_chat import handoff
from sophie_chat.inbox import presence
from sophie_chat.inbox.presence import anyone_online
from tests.support.handoff import handoff_settings, make_agent, make_session
from tests.support.overrides import settings_with
from tests.support.waiting import eventually
from tests.support.websocket import CommunicatorClient, make_communicator

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def presence_decides():
    handoff.availability(anyone_online)
    yield
    handoff.forget_availability(anyone_online)


async def is_away(agent_id: int) -> bool:
    return (await presence.states([agent_id]))[agent_id] == presence.AWAY


async def state_of_a_new_request() -> str:
    session = await make_session()
    return (await handoff.request(str(session.pk))).state


async def test_with_no_agent_online_a_visitor_hears_unavailable_at_once(presence_decides):
    with settings_with(HANDOFF=handoff_settings()):
        await make_agent("bia")
        assert await state_of_a_new_request() == "unavailable"


async def test_an_open_inbox_makes_the_team_available_and_idling_does_not(presence_decides):
    with settings_with(HANDOFF=handoff_settings()):
        bia = await make_agent("bia")
        communicator = make_communicator(user=bia, path="/ws/chat/inbox/")
        assert (await communicator.connect())[0]
        inbox = CommunicatorClient(communicator)
        try:
            assert (await inbox.receive())["type"] == "snapshot"
            assert await state_of_a_new_request() == "waiting"
            await inbox.send({"type": "presence", "state": "away"})
            assert await eventually(lambda: is_away(bia.pk))
            assert await state_of_a_new_request() == "unavailable"
        finally:
            await inbox.close()
