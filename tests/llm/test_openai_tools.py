"""OpenAIBackend with tools, through the real SDK against the fake OpenAI server."""

from __future__ import annotations

import json

from sophie_chat.llm.base import LLMRequest, LLMToolCall, PromptMessage
from tests.support import tools as sample


def ask(**kwargs) -> LLMRequest:
    return LLMRequest(
        messages=(
            PromptMessage("system", "You are Sophie."),
            PromptMessage("user", "What are my bookings? And what is 2 + 3?"),
        ),
        **kwargs,
    )


async def test_the_tools_are_sent_as_function_tools(openai_server, make_openai_backend):
    backend = make_openai_backend()
    openai_server.reply("Hi.")
    request = ask(tools=(sample.add.definition(), sample.my_profile.definition()))
    [chunk async for chunk in backend.stream(request)]
    sent = openai_server.last_request.body["tools"]
    assert [tool["function"]["name"] for tool in sent] == ["add", "my_profile"]
    assert sent[0]["type"] == "function"
    assert sent[0]["function"]["parameters"]["required"] == ["a", "b"]


async def test_no_tools_key_without_tools(openai_server, make_openai_backend):
    backend = make_openai_backend()
    openai_server.reply("Hi.")
    [chunk async for chunk in backend.stream(ask())]
    assert "tools" not in openai_server.last_request.body


async def test_parallel_streamed_calls_are_assembled(openai_server, make_openai_backend):
    backend = make_openai_backend()
    openai_server.call_tools(("my_profile", {}), ("add", {"a": 2, "b": 3}), text="Let me look.")
    chunks = [chunk async for chunk in backend.stream(ask(tools=(sample.add.definition(),)))]
    assert "".join(chunk.delta for chunk in chunks) == "Let me look."
    calls = [call for chunk in chunks for call in chunk.tool_calls]
    assert [(call.name, json.loads(call.arguments)) for call in calls] == [
        ("my_profile", {}),
        ("add", {"a": 2, "b": 3}),
    ]
    assert len({call.id for call in calls}) == 2
    assert any(chunk.finish_reason == "tool_calls" for chunk in chunks)


async def test_malformed_arguments_are_passed_on_as_written(openai_server, make_openai_backend):
    backend = make_openai_backend()
    openai_server.call_tools(("add", '{"a": 2, "b":'))
    chunks = [chunk async for chunk in backend.stream(ask())]
    calls = [call for chunk in chunks for call in chunk.tool_calls]
    assert calls[0].arguments == '{"a": 2, "b":'


async def test_tool_calls_and_results_go_back_to_the_model(openai_server, make_openai_backend):
    backend = make_openai_backend()
    openai_server.reply("Five.")
    call = LLMToolCall(id="call_1", name="add", arguments='{"a": 2, "b": 3}')
    request = LLMRequest(
        messages=(
            *ask().messages,
            PromptMessage("assistant", "", tool_calls=(call,)),
            PromptMessage("tool", "5", tool_call_id="call_1"),
        )
    )
    chunks = [chunk async for chunk in backend.stream(request)]
    assert "".join(chunk.delta for chunk in chunks) == "Five."
    sent = openai_server.last_request.body["messages"]
    assert sent[-2]["tool_calls"] == [
        {
            "id": "call_1",
            "type": "function",
            "function": {"name": "add", "arguments": '{"a": 2, "b": 3}'},
        }
    ]
    assert sent[-1] == {"role": "tool", "content": "5", "tool_call_id": "call_1"}
