"""A hostile OpenAI-compatible server: every malformed stream ends in a clean answer.

The real ``openai`` SDK talks HTTP to ``tests/support/openai_server.py``
sending each stream of :data:`~tests.support.openai_server.HOSTILE` (wrong
types, huge and nested events, lone surrogates, NUL, errors mid-stream, an
endless answer). Whatever it sends, the turn ends with ``finished``: the
usual fallback when the stream is unusable, else an answer that is bounded
by ``MAX_ANSWER_CHARS``, cleaned like visitor text, and stored as shown.
"""

from __future__ import annotations

import unicodedata

import pytest

from sophie_chat import backends
from sophie_chat.models import ChatMessage
from tests.support.openai_server import API_KEY, HOSTILE, FakeOpenAIServer
from tests.support.overrides import settings_with
from tests.support.turns import new_session, turn

pytestmark = pytest.mark.django_db(transaction=True)

#: Streams no answer can be made of: the usual fallback follows what was said.
FALLS_BACK = {
    "number_delta",
    "object_delta",
    "nested",
    "not_json",
    "huge_event",
    "mid_stream_error",
    "no_finish",
}


@pytest.fixture(scope="module")
def hostile_server():
    with FakeOpenAIServer(api_key=API_KEY) as server:
        yield server


def openai_settings(url: str) -> dict:
    return {
        "BACKEND": "sophie_chat.llm.openai.OpenAIBackend",
        "OPTIONS": {"api_key": API_KEY, "base_url": url, "max_retries": 0, "timeout": 5},
    }


def is_clean(text: str) -> bool:
    return all(ch in "\n\t" or unicodedata.category(ch) not in ("Cc", "Cs") for ch in text)


@pytest.mark.parametrize("name", sorted(HOSTILE))
async def test_hostile_stream_ends_in_a_clean_bounded_stored_answer(hostile_server, name):
    hostile_server.reset()
    hostile_server.enqueue(HOSTILE[name])
    with settings_with(
        LLM=openai_settings(hostile_server.url),
        MAX_ANSWER_CHARS=500,
        RESPONSE_TIMEOUT_SECONDS=10,
        RESPONSE_CACHE={"ENABLED": False},
    ):
        session = await new_session()
        sink = await turn(session, f"Hostile {name}?")
        await backends.llm().aclose()
    answer = sink.answer()
    stored = await ChatMessage.objects.aget(pk=answer.id)
    assert stored.content == answer.content == sink.text()
    assert is_clean(answer.content)
    assert 0 < len(answer.content) <= 500 + 1000  # the fallback text may follow a cut answer
    assert answer.metadata["fallback"] is (name in FALLS_BACK)
    if name not in FALLS_BACK:
        assert len(answer.content) <= 500
    if name == "endless":
        assert len(answer.content) == 500
        assert answer.metadata["truncated"] is True
    assert "<b>" not in answer.content
    assert "42" not in answer.content
