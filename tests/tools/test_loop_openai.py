"""The tool loop with the real ``openai`` SDK (OpenAIBackend) against the fake OpenAI
server scripted to call tools: malformed arguments, unknown tools, a tool that raises,
one that hangs, parallel calls."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator

import pytest
from channels.db import database_sync_to_async
from django.contrib.auth.models import AnonymousUser

from sophie_chat import backends, db, store
from sophie_chat.engine import TurnRequest, Visitor, run_turn
from tests.support import tools as sample
from tests.support.openai_server import API_KEY, FakeOpenAIServer
from tests.support.overrides import settings_with
from tests.support.turns import RecordingSink

pytestmark = pytest.mark.django_db(transaction=True)

TOOLS = [
    "tests.support.tools.add",
    "tests.support.tools.broken",
    "tests.support.tools.hangs",
    "tests.support.tools.pause",
]


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(api_key=API_KEY) as running:
        yield running


@pytest.fixture(autouse=True)
async def _openai_with_tools(server):
    sample.CALLS.clear()
    llm = {
        "BACKEND": "sophie_chat.llm.openai.OpenAIBackend",
        "OPTIONS": {"api_key": API_KEY, "base_url": server.url, "max_retries": 0, "timeout": 5},
    }
    with settings_with(LLM=llm, TOOLS=TOOLS, RESPONSE_CACHE={"ENABLED": False}):
        yield
        await backends.llm().aclose()
    await database_sync_to_async(lambda: None)()
    await asyncio.to_thread(db.reset_database_threads, wait=True)


async def ask(content: str) -> RecordingSink:
    session = await store.create_session(
        user_id=None, user_type="anonymous", locale="en", context={}, client_ip=None
    )
    visitor = Visitor(
        user=AnonymousUser(),
        user_id=None,
        user_type="anonymous",
        ip=f"198.51.100.{uuid.uuid4().int % 250 + 1}",
    )
    sink = RecordingSink()
    await run_turn(TurnRequest(session, visitor, content, None, "en"), sink)
    return sink


def ended(sink: RecordingSink) -> list[str]:
    return [report[2] for report in sink.reports if report[0] == "tool_ended"]


def results(server: FakeOpenAIServer) -> list[str]:
    messages = server.last_request.body["messages"]
    return [m["content"] for m in messages if m["role"] == "tool"]


async def test_parallel_calls_run_and_their_results_go_back(server):
    server.call_tools(("add", {"a": 2, "b": 3}), ("add", {"a": 10, "b": 1}), text="Counting.")
    server.reply(" 5 and 11.")
    sink = await ask("2 + 3 and 10 + 1?")
    assert sink.text() == "Counting. 5 and 11."
    assert ended(sink) == ["ok", "ok"]
    first = server.chat_requests[0].body
    assert [tool["function"]["name"] for tool in first["tools"]] == [
        "add",
        "broken",
        "hangs",
        "pause",
    ]
    sent = server.last_request.body["messages"]
    assert [call["function"]["name"] for call in sent[-3]["tool_calls"]] == ["add", "add"]
    assert [r.split("\n")[3] for r in results(server)] == ["5", "11"]
    assert [m["tool_call_id"] for m in sent[-2:]] == [c["id"] for c in sent[-3]["tool_calls"]]


async def test_parallel_calls_run_concurrently(server):
    server.call_tools(*[("pause", {"seconds": 0.5})] * 3)
    server.reply("Done.")
    loop = asyncio.get_running_loop()
    began = loop.time()
    sink = await ask("Wait.")
    assert loop.time() - began < 1.3
    assert ended(sink) == ["ok", "ok", "ok"]


async def test_malformed_arguments_are_sent_back_for_the_model_to_fix(server):
    server.call_tools(("add", '{"a": 2, "b"'))
    server.call_tools(("add", {"a": 2, "b": 3}))
    server.reply("5.")
    sink = await ask("2 + 3?")
    assert ended(sink) == ["error", "ok"]
    second = server.chat_requests[1].body["messages"]
    assert "Invalid arguments" in second[-1]["content"]
    assert sample.CALLS == [("add", {"a": 2, "b": 3})]
    assert sink.text() == "5."


async def test_an_unknown_tool_is_told_to_the_model(server):
    server.call_tools(("launch_rockets", {"count": 3}))
    server.reply("I can't.")
    sink = await ask("Launch.")
    assert ended(sink) == []
    assert "There is no tool named 'launch_rockets'" in results(server)[0]
    assert sink.text() == "I can't."


async def test_a_raising_tool_is_an_error_without_its_details(server):
    server.call_tools(("broken", {}))
    server.reply("It failed.")
    sink = await ask("Break.")
    assert ended(sink) == ["error"]
    assert "The tool failed." in results(server)[0]
    assert "secret" not in json.dumps(server.last_request.body)


async def test_a_hanging_tool_times_out_and_the_answer_continues(server):
    server.call_tools(("hangs", {}))
    server.reply("Too slow, sorry.")
    sink = await ask("Hang.")
    assert ended(sink) == ["timeout"]
    assert "did not answer in time" in results(server)[0]
    assert sink.answer().content == "Too slow, sorry."


async def test_the_model_failing_mid_loop_falls_back(server):
    server.call_tools(("add", {"a": 1, "b": 1}))
    server.error(500)
    sink = await ask("1 + 1?")
    metadata = sink.answer().metadata
    assert metadata["fallback"] is True
    assert metadata["error"] == "LLMUnavailable"
    assert metadata["tools"] == [{"name": "add", "status": "ok"}]
