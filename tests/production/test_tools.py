"""A tool's confirmation across two server processes on Redis and PostgreSQL.

The turn waits in one process; the visitor confirms from a tab on the other.
The decision is one conditional UPDATE in PostgreSQL, and ``confirm_closed``
crosses the channel layer (Redis) to every tab, and to the waiting turn.
"""

from __future__ import annotations

import psycopg
import pytest

from tests.support.websocket import dumps

pytestmark = [
    pytest.mark.multiprocess,
    pytest.mark.redis,
    pytest.mark.postgres,
    pytest.mark.server,
]

PAGE = {"page_url": "https://casa.example/tools-test/"}


def tool_calls(database_url: str) -> list[tuple[str, str, str]]:
    with psycopg.connect(database_url) as conn:
        return list(
            conn.execute(
                "SELECT name, status, confirmation FROM sophie_chat_toolcall "
                "WHERE name = 'leave_note' ORDER BY created_at"
            )
        )


@pytest.mark.parametrize("confirming", ["other_process", "both_processes"])
async def test_a_confirmation_given_on_the_other_process_runs_the_tool_once(
    shared_topology, open_chat, fake_openai, confirming
):
    first, second = shared_topology.servers
    before = len(tool_calls(shared_topology.database_url))
    asker, _ = await open_chat(first)
    session = await asker.start(context=PAGE)
    other, _ = await open_chat(second)
    assert (await other.start(resume_token=session["resume_token"]))["type"] == "session"

    fake_openai.call_tools(("leave_note", {"note": f"call me back ({confirming})"}))
    fake_openai.queue(text="Your note is left.")
    await asker.send({"type": "message", "content": "Leave a note, please."})
    request = (await asker.receive_until("confirm_request"))[-1]
    assert (await other.receive_until("confirm_request"))[-1] == request, "the other tab is asked"

    answer = {"type": "confirm", "confirmation_id": request["confirmation_id"], "accept": True}
    await other.send(answer)
    if confirming == "both_processes":
        await asker.send(answer)
    answered = await asker.receive_until("stream_end")
    assert answered[-1]["message"]["content"] == "Your note is left.", dumps(answered)
    assert [f["outcome"] for f in answered if f["type"] == "confirm_closed"] == ["accepted"]
    seen = await other.receive_until("stream_end")
    assert [f["outcome"] for f in seen if f["type"] == "confirm_closed"] == ["accepted"]
    errors = [f["code"] for f in answered + seen if f["type"] == "error"]
    if confirming == "both_processes" and not errors:
        # The losing answer may be refused after the answer went on without it.
        errors = [(await asker.receive(timeout=5))["code"]]
    assert errors == (["confirmation_not_found"] if confirming == "both_processes" else [])
    calls = tool_calls(shared_topology.database_url)[before:]
    assert calls == [("leave_note", "ok", "accepted")]
