"""An answer survives a network blip across processes: cut off on one, picked up on the other.

The tab that asked drops its socket mid-answer on one server process; a tab
resuming the conversation on the other process gets the text so far, then the
rest live, through the channel layer on Redis (docs/protocol.md, "Resuming
mid-answer"), from one model call.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.support.websocket import dumps

pytestmark = [
    pytest.mark.multiprocess,
    pytest.mark.redis,
    pytest.mark.postgres,
    pytest.mark.server,
]

REPLY = "An oven clean takes about two hours and we bring every product with us."


def shown(frames: list[dict[str, Any]]) -> str:
    """The answer as a client following the protocol shows it (resumed ``content``, deltas)."""
    text = ""
    for frame in frames:
        if frame["type"] == "stream_start":
            text = frame.get("content", "")
        elif frame["type"] == "stream_delta":
            text += frame["delta"]
    return text


@pytest.mark.parametrize("direction", ["uvicorn_to_daphne", "daphne_to_uvicorn"])
async def test_answer_cut_off_on_one_process_is_picked_up_whole_on_the_other(
    shared_topology, open_chat, fake_openai, direction
):
    first, second = shared_topology.servers
    if direction == "daphne_to_uvicorn":
        first, second = second, first
    fake_openai.queue(text=REPLY, token_delay=0.15)
    tab, _ = await open_chat(first)
    session = await tab.start()
    question = f"How long does an oven clean take ({direction})?"
    await tab.send({"type": "message", "content": question, "client_message_id": "blip-1"})
    await tab.receive_until("stream_start")
    before = ""
    while len(before.split()) < 3:
        before += (await tab.receive_until("stream_delta"))[-1]["delta"]
    await tab.close()

    other, _ = await open_chat(second)
    resumed = await other.start(resume_token=session["resume_token"])
    frames = await other.receive_until("stream_end")

    assert [m["role"] for m in resumed["history"]] == ["user"], dumps([resumed])
    start, end = frames[0], frames[-1]["message"]
    assert start["type"] == "stream_start", dumps(frames)
    assert start["resumed"] is True
    assert start["content"].startswith(before)
    assert len(start["content"]) < len(REPLY)
    assert start["message_id"] == end["id"]
    assert shown(frames) == end["content"] == REPLY
    assert len(fake_openai.chat_requests()) == 1
    assert shared_topology.sql(
        "SELECT content, status FROM sophie_chat_chatmessage WHERE session_id = %s "
        "AND role = 'assistant'",
        uuid.UUID(session["session_id"]),
    ) == [(REPLY, "complete")]
