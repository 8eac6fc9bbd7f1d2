"""The inbox's staff WebSocket (ws/chat/inbox/) in this process, next to the visitor's chat."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, timedelta

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.utils import timezone

from sophie_chat import handoff
from sophie_chat.models import CannedReply, ChatMessage, InternalNote
from tests.support.handoff import handoff_settings
from tests.support.overrides import settings_with
from tests.support.websocket import CommunicatorClient, make_communicator

pytestmark = pytest.mark.django_db(transaction=True)

INBOX = "/ws/chat/inbox/"


@sync_to_async
def make_person(username, *, agent=False, **fields):
    user = get_user_model().objects.create_user(
        username, password="x", first_name=username.capitalize(), **fields
    )
    if agent:
        user.user_permissions.add(Permission.objects.get(codename="handle_conversation"))
    return user


@sync_to_async
def revoke(user):
    user.user_permissions.clear()


@pytest.fixture
async def open_inbox():
    """``client, first_frame = await open_inbox(user)``: an inbox tab; closed after the test."""
    opened = []

    async def _open(user):
        communicator = make_communicator(user=user, path=INBOX)
        connected, _ = await communicator.connect()
        assert connected
        client = CommunicatorClient(communicator)
        opened.append(client)
        return client, await client.receive()

    yield _open
    for client in opened:
        with contextlib.suppress(Exception):
            await client.close()


async def receive_type(client, kind, timeout=5):
    """The next frame of type ``kind``, skipping others (presence changes, summaries)."""
    async with asyncio.timeout(timeout):
        while True:
            frame = await client.receive(timeout)
            if frame["type"] == kind:
                return frame


async def visitor_asking(connect, text="quero falar com um atendente"):
    """A visitor's tab with a conversation and a waiting handoff: ``(tab, session, handoff)``."""
    tab, _welcome = await connect()
    session = await tab.start(
        context={"page_url": "https://casa.test/servicos", "page_title": "Serviços"}
    )
    request = await handoff.request(session["session_id"], reason=text)
    return tab, session, request


# -- who may connect ---------------------------------------------------------------


async def test_anonymous_visitors_are_refused_with_4403(open_inbox):
    from django.contrib.auth.models import AnonymousUser

    client, frame = await open_inbox(AnonymousUser())
    assert frame["type"] == "error"
    assert frame["code"] == "forbidden"
    assert (await client.communicator.receive_output())["code"] == 4403


@pytest.mark.parametrize("fields", [{}, {"is_staff": True}], ids=["user", "staff"])
async def test_a_user_without_the_permission_is_refused_with_4403(open_inbox, fields):
    client, frame = await open_inbox(await make_person("rui", **fields))
    assert frame["code"] == "forbidden"
    assert (await client.communicator.receive_output())["code"] == 4403


async def test_an_agent_gets_a_snapshot(open_inbox):
    bia = await make_person("bia", agent=True)
    reply = await sync_to_async(CannedReply.objects.create)(
        title="Saudação", text="Olá! Sou a Bia, vou te ajudar.", language="pt-br"
    )
    _client, snapshot = await open_inbox(bia)
    assert snapshot["type"] == "snapshot"
    assert snapshot["me"] == {"id": bia.pk, "name": "Bia"}
    assert snapshot["conversations"] == []
    assert snapshot["agents"] == [{"id": bia.pk, "name": "Bia", "presence": "online"}]
    assert snapshot["canned_replies"] == [
        {"id": reply.pk, "title": "Saudação", "text": reply.text, "language": "pt-br"}
    ]
    assert snapshot["agent_idle"] == 300


async def test_losing_the_permission_closes_the_inbox_at_the_next_action(open_inbox):
    bia = await make_person("bia", agent=True)
    client, _snapshot = await open_inbox(bia)
    await revoke(bia)
    await client.send({"type": "presence", "state": "away"})
    assert (await receive_type(client, "error"))["code"] == "forbidden"
    assert (await client.communicator.receive_output())["code"] == 4403


async def test_bad_frames_get_a_protocol_error(open_inbox):
    client, _ = await open_inbox(await make_person("bia", agent=True))
    await client.send("not json")
    assert (await receive_type(client, "error"))["code"] == "invalid_json"
    await client.send({"type": "claim", "handoff_id": "x"})
    assert (await receive_type(client, "error"))["code"] == "invalid_message"
    await client.send({"type": "open", "handoff_id": 999})
    error = await receive_type(client, "error")
    assert (error["code"], error["handoff_id"]) == ("handoff_not_found", 999)


# -- the conversation -----------------------------------------------------------------


async def test_a_waiting_conversation_appears_live_with_its_transcript_and_context(
    connect, open_inbox, dummy_llm
):
    client, _ = await open_inbox(await make_person("bia", agent=True))
    dummy_llm.enqueue("Posso ajudar com a reserva.")
    tab, _welcome = await connect()
    session = await tab.start(
        context={"page_url": "https://casa.test/servicos?x=1", "page_title": "Serviços"}
    )
    await tab.ask("Como reservo uma faxina?")
    request = await handoff.request(session["session_id"], reason="quero falar com um atendente")

    changed = await receive_type(client, "conversation_changed")
    row = changed["conversation"]
    assert (row["id"], row["state"], row["session_id"]) == (
        request.pk,
        "waiting",
        session["session_id"],
    )
    assert row["requested_at"]
    assert row["agent"] is None

    await client.send({"type": "open", "handoff_id": request.pk})
    details = await receive_type(client, "conversation")
    assert [(m["role"], m["content"]) for m in details["messages"]] == [
        ("user", "Como reservo uma faxina?"),
        ("assistant", "Posso ajudar com a reserva."),
    ]
    assert "sources" in details["messages"][1]["metadata"]
    sections = {s["title"]: s["facts"] for s in details["context"]}
    assert sections["visitor"]["logged in"] == "no"
    assert sections["page"] == {"url": "https://casa.test/servicos", "title": "Serviços"}


async def test_two_agents_claiming_at_once_one_wins_and_the_other_is_told(connect, open_inbox):
    bia, caio = await make_person("bia", agent=True), await make_person("caio", agent=True)
    first, _ = await open_inbox(bia)
    second, _ = await open_inbox(caio)
    _tab, _session, request = await visitor_asking(connect)
    claim = {"type": "claim", "handoff_id": request.pk}
    await asyncio.gather(first.send(claim), second.send(claim))
    outcomes = await asyncio.gather(
        receive_either(first, "ack", "error"), receive_either(second, "ack", "error")
    )
    kinds = sorted(frame["type"] for frame in outcomes)
    assert kinds == ["ack", "error"]
    winner = bia if outcomes[0]["type"] == "ack" else caio
    lost = next(frame for frame in outcomes if frame["type"] == "error")
    assert lost["code"] == "already_claimed"
    assert lost["message"] == f"{winner.first_name} took this conversation first."
    stored = await sync_to_async(lambda: handoff_row(request.pk))()
    assert (stored.state, stored.agent_id) == ("active", winner.pk)


def handoff_row(pk):
    from sophie_chat.models import Handoff

    return Handoff.objects.get(pk=pk)


async def receive_either(client, *kinds):
    async with asyncio.timeout(5):
        while True:
            frame = await client.receive()
            if frame["type"] in kinds:
                return frame


async def test_the_agents_message_reaches_the_visitor_and_the_visitors_reaches_the_agent(
    connect, open_inbox
):
    bia = await make_person("bia", agent=True)
    client, _ = await open_inbox(bia)
    tab, _session, request = await visitor_asking(connect)
    await client.send({"type": "claim", "handoff_id": request.pk})
    await receive_type(client, "ack")
    await client.send({"type": "open", "handoff_id": request.pk})
    await receive_type(client, "conversation")

    await client.send(
        {
            "type": "message",
            "handoff_id": request.pk,
            "content": "Oi, sou a Bia.",
            "client_message_id": "m1",
        }
    )
    ack = await receive_type(client, "ack")
    assert (ack["of"], ack["client_message_id"]) == ("message", "m1")
    heard = await receive_type(tab, "message")
    assert heard["message"]["role"] == "agent"
    assert heard["message"]["content"] == "Oi, sou a Bia."
    assert heard["message"]["agent"] == {"name": "Bia"}
    stored = await sync_to_async(ChatMessage.objects.get)(role="agent")
    assert stored.agent_id == bia.pk


async def test_only_the_holder_may_answer_transfer_or_end(connect, open_inbox):
    bia, caio = await make_person("bia", agent=True), await make_person("caio", agent=True)
    first, _ = await open_inbox(bia)
    second, _ = await open_inbox(caio)
    _tab, _session, request = await visitor_asking(connect)
    await first.send({"type": "claim", "handoff_id": request.pk})
    await receive_type(first, "ack")
    for frame in (
        {"type": "message", "handoff_id": request.pk, "content": "Eu assumo"},
        {"type": "end", "handoff_id": request.pk},
        {"type": "transfer", "handoff_id": request.pk, "agent_id": caio.pk},
    ):
        await second.send(frame)
        error = await receive_type(second, "error")
        assert error["code"] == "not_yours", frame


async def test_a_transfer_gives_the_conversation_to_another_agent(connect, open_inbox):
    bia, caio = await make_person("bia", agent=True), await make_person("caio", agent=True)
    first, _ = await open_inbox(bia)
    second, _ = await open_inbox(caio)
    _tab, _session, request = await visitor_asking(connect)
    await first.send({"type": "claim", "handoff_id": request.pk})
    await receive_type(first, "ack")
    await first.send({"type": "transfer", "handoff_id": request.pk, "agent_id": caio.pk})
    assert (await receive_type(first, "ack"))["of"] == "transfer"
    while True:
        row = (await receive_type(second, "conversation_changed"))["conversation"]
        if row["agent"] and row["agent"]["id"] == caio.pk:
            break
    await second.send({"type": "message", "handoff_id": request.pk, "content": "Caio aqui."})
    assert (await receive_type(second, "ack"))["of"] == "message"


async def test_a_transfer_to_someone_who_is_not_an_agent_is_refused(connect, open_inbox):
    bia = await make_person("bia", agent=True)
    rui = await make_person("rui", is_staff=True)
    client, _ = await open_inbox(bia)
    _tab, _session, request = await visitor_asking(connect)
    await client.send({"type": "claim", "handoff_id": request.pk})
    await receive_type(client, "ack")
    await client.send({"type": "transfer", "handoff_id": request.pk, "agent_id": rui.pk})
    assert (await receive_type(client, "error"))["code"] == "agent_unavailable"


async def test_ending_tells_the_visitor_and_every_inbox(connect, open_inbox):
    bia = await make_person("bia", agent=True)
    client, _ = await open_inbox(bia)
    tab, _session, request = await visitor_asking(connect)
    await client.send({"type": "claim", "handoff_id": request.pk})
    await receive_type(client, "ack")
    await client.send({"type": "end", "handoff_id": request.pk})
    assert (await receive_type(client, "ack"))["of"] == "end"
    while (await receive_type(client, "conversation_changed"))["conversation"]["state"] != "ended":
        pass
    while (frame := await receive_type(tab, "handoff"))["state"] != "ended":
        pass
    assert frame["state"] == "ended"


async def test_internal_notes_reach_every_agent_and_never_the_visitor(connect, open_inbox):
    bia, caio = await make_person("bia", agent=True), await make_person("caio", agent=True)
    first, _ = await open_inbox(bia)
    second, _ = await open_inbox(caio)
    tab, _session, request = await visitor_asking(connect)
    await first.send(
        {"type": "note", "handoff_id": request.pk, "content": "Cliente VIP, <b>cuidado</b>"}
    )
    for client in (first, second):
        note = await receive_type(client, "note")
        assert note["handoff_id"] == request.pk
        assert note["note"]["author"] == "Bia"
        assert note["note"]["content"] == "Cliente VIP, <b>cuidado</b>"
    await second.send({"type": "open", "handoff_id": request.pk})
    details = await receive_type(second, "conversation")
    assert [n["content"] for n in details["notes"]] == ["Cliente VIP, <b>cuidado</b>"]
    assert await sync_to_async(InternalNote.objects.count)() == 1
    # The visitor's tab heard nothing about it.
    frames = []
    while not await tab.nothing_more(0.3):
        frames.append(await tab.receive())
    assert all("VIP" not in str(frame) for frame in frames)


async def test_unread_counts_follow_what_the_agent_has_opened(connect, open_inbox, dummy_llm):
    bia = await make_person("bia", agent=True)
    tab, _session, request = await visitor_asking(connect)
    await tab.send({"type": "message", "content": "Alguém aí?"})
    await receive_type(tab, "message")
    client, snapshot = await open_inbox(bia)
    (row,) = snapshot["conversations"]
    assert row["unread"] >= 1
    await client.send({"type": "open", "handoff_id": request.pk})
    await receive_type(client, "conversation")
    row = (await receive_type(client, "conversation_changed"))["conversation"]
    assert row["unread"] == 0


async def test_presence_online_away_and_offline(open_inbox):
    bia, caio = await make_person("bia", agent=True), await make_person("caio", agent=True)
    watcher, _ = await open_inbox(bia)
    client, snapshot = await open_inbox(caio)
    assert {a["name"]: a["presence"] for a in snapshot["agents"]} == {
        "Bia": "online",
        "Caio": "online",
    }
    await presence_of(watcher, "Caio", "online")
    await client.send({"type": "presence", "state": "away"})
    await presence_of(watcher, "Caio", "away")
    await client.close()
    await presence_of(watcher, "Caio", "offline")


async def presence_of(watcher, name, state):
    """Wait for the watcher to hear that ``name`` is ``state``; fail on another news of them."""
    while True:
        frame = await receive_type(watcher, "presence")
        if frame["agent"]["name"] == name and frame["presence"] == state:
            return


async def test_out_of_hours_a_message_left_by_the_visitor_shows_in_the_inbox(connect, open_inbox):
    today = timezone.now().astimezone(UTC).date()
    closed_today = handoff_settings(
        TIMEZONE="UTC",
        HOURS={
            day: [["09:00", "18:00"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
        },
        HOLIDAYS=[today.isoformat()],
    )
    with settings_with(HANDOFF=closed_today):
        client, _ = await open_inbox(await make_person("bia", agent=True))
        tab, _welcome = await connect()
        await tab.start()
        await tab.send({"type": "handoff_request", "reason": "Vazamento"})
        state = await receive_type(tab, "handoff")
        assert state["state"] == "unavailable"
        assert state["opens_at"].startswith((today + timedelta(days=1)).isoformat())
        row = (await receive_type(client, "conversation_changed"))["conversation"]
        assert (row["state"], row["left_message"]) == ("unavailable", False)

        await tab.send(
            {
                "type": "handoff_leave_message",
                "name": "Ana",
                "contact": "ana@example.com",
                "message": "A pia da cozinha está vazando.",
            }
        )
        row = (await receive_type(client, "conversation_changed"))["conversation"]
        assert (row["id"], row["left_message"]) == (row["id"], True)
        await client.send({"type": "open", "handoff_id": row["id"]})
        details = await receive_type(client, "conversation")
        (lead,) = details["leads"]
        assert (lead["name"], lead["email"], lead["details"]) == (
            "Ana",
            "ana@example.com",
            "A pia da cozinha está vazando.",
        )


async def test_each_side_sees_the_other_typing(connect, open_inbox):
    with settings_with(HANDOFF=handoff_settings()):
        bia = await make_person("bia", agent=True)
        client, _ = await open_inbox(bia)
        tab, _session, request = await visitor_asking(connect)
        await client.send({"type": "claim", "handoff_id": request.pk})
        await receive_type(client, "ack")
        await tab.send({"type": "typing", "is_typing": True})
        typing = await receive_type(client, "typing")
        assert (typing["handoff_id"], typing["role"], typing["is_typing"]) == (
            request.pk,
            "user",
            True,
        )
        await client.send({"type": "typing", "handoff_id": request.pk, "is_typing": True})
        heard = await receive_type(tab, "typing")
        assert (heard["role"], heard["is_typing"]) == ("agent", True)


async def test_claiming_a_conversation_the_visitor_cancelled_says_it_no_longer_waits(
    connect, open_inbox
):
    client, _ = await open_inbox(await make_person("bia", agent=True))
    _tab, session, request = await visitor_asking(connect)
    assert await handoff.cancel(session["session_id"])
    await client.send({"type": "claim", "handoff_id": request.pk})
    error = await receive_type(client, "error")
    assert (error["code"], error["handoff_id"]) == ("not_waiting", request.pk)
