"""A handoff across processes on Redis and PostgreSQL: the visitor on one server
process, the agent's service calls in another process, and a server restart in the
middle of the conversation that loses nothing."""

from __future__ import annotations

import json
import sys

import pytest

from tests.support.chat_servers import ServerSpec, start_chat_servers, stop_chat_servers
from tests.support.processes import run_command
from tests.support.websocket import dumps

pytestmark = [
    pytest.mark.multiprocess,
    pytest.mark.redis,
    pytest.mark.postgres,
    pytest.mark.server,
]


def agent(topology, *argv: str):
    """Run one agent command in a process of its own (tests.support.handoff_agent)."""
    out = run_command(
        [sys.executable, "-m", "tests.support.handoff_agent", *argv], env=topology.env
    )
    return json.loads(out.strip().splitlines()[-1])


async def test_the_visitor_and_the_agent_on_different_processes_chat_while_sophie_waits(
    handoff_topology, open_chat, fake_openai
):
    tab_a, tab_b, session = await handoff_topology.two_tabs(open_chat)
    session_id = session["session_id"]

    await tab_a.send({"type": "message", "content": "Quero falar com um atendente"})
    frames = await tab_a.receive_until("stream_end")
    assert {"type": "handoff", "state": "waiting", "position": 1} in frames, dumps(frames)
    seen = await tab_b.receive_until("stream_end")
    assert {"type": "handoff", "state": "waiting", "position": 1} in seen, dumps(seen)

    assert agent(handoff_topology, "claim", session_id, "ana") is True
    active = {"type": "handoff", "state": "active", "agent": {"name": "Ana"}}
    assert (await tab_a.receive_until("handoff"))[-1] == active
    assert (await tab_b.receive_until("handoff"))[-1] == active

    requests_before = len(fake_openai.chat_requests())
    await tab_b.send(
        {"type": "message", "content": "My sink is leaking", "client_message_id": "m1"}
    )
    ack = (await tab_b.receive_until("message"))[-1]
    assert ack["message"]["content"] == "My sink is leaking"
    agent(handoff_topology, "say", session_id, "ana", "A plumber is on the way.")
    for tab in (tab_a, tab_b):
        await tab.receive_until("typing")
        got = await tab.receive_until("message")
        while got[-1]["message"]["role"] != "agent":
            got = await tab.receive_until("message")
        assert got[-1]["message"]["content"] == "A plumber is on the way."
        assert got[-1]["message"]["agent"] == {"name": "Ana"}
        assert not [f for f in got if f["type"].startswith("stream")], dumps(got)
    assert len(fake_openai.chat_requests()) == requests_before, "Sophie stayed quiet"
    assert ("agent", "A plumber is on the way.") in handoff_topology.messages(session_id)


async def test_a_server_restart_mid_conversation_loses_nothing(
    handoff_topology, open_chat, tmp_path
):
    first, second = handoff_topology.servers
    visitor, _ = await open_chat(first)
    session = await visitor.start()
    session_id = session["session_id"]
    await visitor.send({"type": "handoff_request", "reason": "no-show"})
    assert (await visitor.receive())["state"] == "waiting"
    assert agent(handoff_topology, "claim", session_id, "bruno") is True
    await visitor.receive_until("handoff")
    agent(handoff_topology, "say", session_id, "bruno", "Checking your booking.")
    await visitor.receive_until("message")

    # The visitor's server goes down and comes back (a deploy); the agent carries on.
    stop_chat_servers([first])
    restarted = start_chat_servers(
        {"restarted": ServerSpec(first.kind, handoff_topology.env)}, tmp_path
    )["restarted"]
    handoff_topology.servers[0] = restarted
    agent(handoff_topology, "say", session_id, "bruno", "Written while you were away.")
    again, _ = await open_chat(restarted)
    resumed = await again.start(resume_token=session["resume_token"])

    assert resumed["handoff"] == {"state": "active", "agent": {"name": "Bruno"}}
    agent_lines = [m["content"] for m in resumed["history"] if m["role"] == "agent"]
    assert agent_lines == ["Checking your booking.", "Written while you were away."]
    agent(handoff_topology, "say", session_id, "bruno", "Still here.")
    got = await again.receive_until("message")
    assert got[-1]["message"]["content"] == "Still here."
    other, _ = await open_chat(second)
    assert (await other.start(resume_token=session["resume_token"]))["handoff"]["state"] == (
        "active"
    )
    assert agent(handoff_topology, "end", session_id, "bruno") is True
    assert (await again.receive_until("handoff"))[-1] == {"type": "handoff", "state": "ended"}
