"""Hypothesis fuzzing of every client frame type through the consumer.

Each example is a connection sending frames of every type built from
hostile values (wrong types, lone surrogates, NUL, bidi controls, huge and
nested values, unknown fields). Whatever arrives, every reply is JSON that
encodes to UTF-8, every error has a documented code (never
``internal_error`` or a ``service_unavailable`` for what can never succeed),
the connection stays open, and closing it gives its slot back. Runs on the
suite's database: SQLite, and PostgreSQL in the PostgreSQL environment.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sophie_chat.connections import registry
from tests.support.websocket import CommunicatorClient, make_communicator

pytestmark = pytest.mark.django_db(transaction=True)

#: The error codes a client may hear for what it sends (docs/protocol.md).
DOCUMENTED = {
    "invalid_json",
    "invalid_message",
    "empty_message",
    "message_too_long",
    "rate_limited",
    "session_not_found",
    "session_closed",
    "quota_exceeded",
}

HOSTILE_CHARS = st.sampled_from(["\ud800", "\udfff", "\x00", "\u202e", "\u2066", "\ufeff", "\n"])
hostile_text = st.lists(st.one_of(st.text(max_size=8), HOSTILE_CHARS), max_size=12).map("".join)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    hostile_text,
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(hostile_text, inner, max_size=3)
    ),
    max_leaves=10,
)
FIELDS = {
    "session_init": ["session_id", "resume_token", "context"],
    "message": ["content", "client_message_id"],
    "typing": ["is_typing"],
    "feedback": ["message_id", "rating", "comment"],
    "session_rate": ["score", "comment"],
    "session_close": [],
    "ping": [],
    # Parsed whatever the settings; answered with invalid_message while HANDOFF is off.
    "handoff_request": ["reason"],
    "handoff_cancel": [],
    "handoff_leave_message": ["contact", "name", "message"],
}


@st.composite
def frames(draw: st.DrawFn) -> str:
    kind = draw(st.one_of(st.sampled_from(sorted(FIELDS)), values))
    frame: dict[str, Any] = {"type": kind}
    for name in FIELDS.get(kind, []) if isinstance(kind, str) else []:
        if draw(st.booleans()):
            frame[name] = draw(values)
    if kind == "session_init" and draw(st.booleans()):
        frame["context"] = {"page_title": draw(hostile_text), "extra": draw(values)}
    if kind == "message" and draw(st.booleans()):
        frame["content"] = draw(hostile_text) or "x"
    # ensure_ascii: a lone surrogate travels as a JSON escape, as a browser would send it.
    return json.dumps(frame)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(batch=st.lists(frames(), min_size=1, max_size=6))
async def test_fuzzed_frames_get_documented_answers_and_leave_no_slot(batch, dummy_llm, caplog):
    registry.reset()
    caplog.clear()
    communicator = make_communicator()
    connected, _ = await communicator.connect()
    assert connected
    client = CommunicatorClient(communicator)
    assert (await client.receive())["type"] == "welcome"
    sent = [*batch, '{"type":"ping"}']
    # Frames are answered in order: the last pong comes after every other reply.
    pongs_due = sum(1 for text in sent if json.loads(text).get("type") == "ping")
    replies = []
    try:
        for text in sent:
            await client.send_text(text)
        while pongs_due:
            raw = await client.receive_text(timeout=5)
            raw.encode("utf-8")  # what a real server's send does
            replies.append(json.loads(raw))
            pongs_due -= replies[-1] == {"type": "pong"}
    finally:
        await communicator.disconnect()
    codes = {r["code"] for r in replies if r["type"] == "error"}
    assert codes <= DOCUMENTED, replies
    assert registry.total == 0
    # No traceback anywhere: nothing logged as an error, no task that died unheard.
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
