"""The staff inbox across processes on Redis and PostgreSQL: real inbox WebSockets of
agents logged in with a session cookie, the visitor on another server process."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from tests.support.logins import create_logins
from tests.support.websocket import ChatClient, open_chat_client

pytestmark = [
    pytest.mark.multiprocess,
    pytest.mark.redis,
    pytest.mark.postgres,
    pytest.mark.server,
]


@pytest.fixture(scope="module")
def cookies(handoff_topology):
    agents = create_logins(
        handoff_topology.env, "bia_mp", "caio_mp", permissions=("handle_conversation",)
    )
    return {**agents, **create_logins(handoff_topology.env, "rui_mp")}


@pytest.fixture
async def open_inbox():
    opened: list[ChatClient] = []

    async def _open(server, cookie=None):
        headers = {"Cookie": cookie} if cookie else None
        client = await open_chat_client(
            f"ws://127.0.0.1:{server.port}/ws/chat/inbox/", origin=server.http_url, headers=headers
        )
        opened.append(client)
        return client, await client.receive()

    yield _open
    for client in opened:
        with contextlib.suppress(Exception):
            await client.close()


async def next_of(client, kind, test=lambda frame: True, timeout=10):
    async with asyncio.timeout(timeout):
        while True:
            frame = await client.receive(timeout)
            if frame["type"] == kind and test(frame):
                return frame


async def claim_outcome(client, handoff_id):
    """The ``ack`` or ``error`` answering a claim of ``handoff_id``."""
    async with asyncio.timeout(10):
        while True:
            frame = await client.receive(10)
            if frame["type"] in ("ack", "error") and frame.get("handoff_id") == handoff_id:
                return frame


@pytest.mark.parametrize("who", [None, "rui_mp"], ids=["anonymous", "user"])
async def test_only_agents_may_open_the_inbox_socket(handoff_topology, open_inbox, cookies, who):
    client, frame = await open_inbox(handoff_topology.servers[1], cookies.get(who))
    assert frame["code"] == "forbidden"
    assert await client.close_code() == 4403


async def test_agents_on_two_processes_and_the_visitor_on_one(
    handoff_topology, open_chat, open_inbox, cookies
):
    uvicorn, daphne = handoff_topology.servers
    bia, snapshot = await open_inbox(daphne, cookies["bia_mp"])
    assert snapshot["type"] == "snapshot"
    caio, _ = await open_inbox(uvicorn, cookies["caio_mp"])

    visitor, _ = await open_chat(uvicorn)
    session = await visitor.start()
    await visitor.send({"type": "handoff_request", "reason": "Prestador não apareceu"})
    assert (await next_of(visitor, "handoff"))["state"] == "waiting"
    waiting = lambda f: f["conversation"]["session_id"] == session["session_id"]  # noqa: E731
    row = (await next_of(bia, "conversation_changed", waiting))["conversation"]
    await next_of(caio, "conversation_changed", waiting)

    claim = {"type": "claim", "handoff_id": row["id"]}
    await asyncio.gather(bia.send(claim), caio.send(claim))
    outcomes = await asyncio.gather(claim_outcome(bia, row["id"]), claim_outcome(caio, row["id"]))
    assert sorted(frame["type"] for frame in outcomes) == ["ack", "error"]
    holder, other = (bia, caio) if outcomes[0]["type"] == "ack" else (caio, bia)
    lost = next(frame for frame in outcomes if frame["type"] == "error")
    assert lost["code"] == "already_claimed"
    assert (await next_of(visitor, "handoff"))["state"] == "active"

    await holder.send({"type": "message", "handoff_id": row["id"], "content": "Oi! Vou ver isso."})
    heard = await next_of(visitor, "message", lambda f: f["message"]["role"] == "agent")
    assert heard["message"]["content"] == "Oi! Vou ver isso."

    await visitor.send({"type": "message", "content": "Obrigada!"})
    for inbox in (holder, other):
        got = await next_of(inbox, "message", lambda f: f["message"]["role"] == "user")
        assert (got["handoff_id"], got["message"]["content"]) == (row["id"], "Obrigada!")

    await holder.send({"type": "end", "handoff_id": row["id"]})
    assert (await next_of(visitor, "handoff"))["state"] == "ended"
    ended = lambda f: f["conversation"]["id"] == row["id"] and f["conversation"]["state"] == "ended"  # noqa: E731
    await next_of(other, "conversation_changed", ended)
