"""Log canaries: no visitor text, no API key, no system prompt in sophie_chat's logs, at any level.

A provider that echoes the request in its error body (key, system prompt,
the visitor's question) must not get them into a WARNING line; nor may any
record of a whole conversation, from DEBUG up, hold the visitor's words
unless ``LOG_ALL_MESSAGES`` is on.
"""

from __future__ import annotations

import logging

import pytest

from sophie_chat import backends
from tests.support.openai_server import API_KEY, FakeOpenAIServer
from tests.support.overrides import settings_with
from tests.support.turns import new_session, turn

pytestmark = pytest.mark.django_db(transaction=True)

VISITOR_CANARY = "canary-visitor-5f3a my card is 4111 1111 1111 1111"
PROMPT_CANARY = "canary-prompt-91be: the internal discount code is ZEBRA"
OTHER_KEY = "sk-proj-canary0123456789abcdefghijklmnop"


def everything_logged(records: list[logging.LogRecord]) -> str:
    parts = []
    for record in records:
        parts.append(record.getMessage())
        parts.extend(repr(value) for value in vars(record).values())
    return "\n".join(parts)


@pytest.fixture
def server():
    with FakeOpenAIServer(api_key=API_KEY) as server:
        yield server


def settings_for(url: str):
    return settings_with(
        LLM={
            "BACKEND": "sophie_chat.llm.openai.OpenAIBackend",
            "OPTIONS": {"api_key": API_KEY, "base_url": url, "max_retries": 0, "timeout": 5},
        },
        SYSTEM_PROMPT=PROMPT_CANARY,
        RESPONSE_CACHE={"ENABLED": False},
    )


@pytest.mark.parametrize("status", [400, 500])
async def test_an_error_body_echoing_the_request_is_not_logged(server, caplog, status):
    caplog.set_level(logging.DEBUG, logger="sophie_chat")
    echo = (
        f"Bad request. You sent: Authorization: Bearer {API_KEY}; api_key={OTHER_KEY}; "
        f"messages=[system: {PROMPT_CANARY}; user: {VISITOR_CANARY}]"
    )
    server.error(status, echo)
    with settings_for(server.url):
        sink = await turn(await new_session(), VISITOR_CANARY)
        await backends.llm().aclose()
    assert sink.answer().metadata["fallback"] is True
    logged = everything_logged([r for r in caplog.records if r.name.startswith("sophie_chat")])
    assert any(r.levelno >= logging.WARNING for r in caplog.records)
    for canary in (API_KEY, OTHER_KEY, PROMPT_CANARY, "canary-visitor", "4111 1111 1111"):
        assert canary not in logged


async def test_a_whole_conversation_logs_no_visitor_text_and_no_key_at_debug(server, caplog):
    caplog.set_level(logging.DEBUG, logger="sophie_chat")
    server.reply("Here is canary-answer-77 for you.")
    with settings_for(server.url):
        session = await new_session()
        await turn(session, VISITOR_CANARY)
        await backends.llm().aclose()
    logged = everything_logged([r for r in caplog.records if r.name.startswith("sophie_chat")])
    for canary in (API_KEY, PROMPT_CANARY, "canary-visitor", "4111 1111 1111", "canary-answer-77"):
        assert canary not in logged
