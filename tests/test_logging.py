"""Logs: structured, under "sophie_chat...", never the message text or a resume
token unless LOG_ALL_MESSAGES, model errors with their cause, no handlers added."""

from __future__ import annotations

import logging

import pytest

from sophie_chat import backends
from sophie_chat.llm.base import LLMUnavailable

pytestmark = pytest.mark.django_db(transaction=True)

SECRET_QUESTION = "My CPF is 123.456.789-09, can you book a cleaning?"
SECRET_ANSWER = "Booked for Tuesday at Rua das Flores 42."


def everything_logged(records: list[logging.LogRecord]) -> str:
    """Each record's message and every attribute a handler or formatter could print."""
    parts = []
    for record in records:
        parts.append(record.getMessage())
        parts.extend(repr(value) for value in vars(record).values())
    return "\n".join(parts)


async def converse(connect) -> str:
    backends.llm().enqueue(SECRET_ANSWER)  # the DummyBackend of the current settings
    client, _ = await connect()
    session = await client.start()
    frames = await client.ask(SECRET_QUESTION)
    assert frames[-1]["type"] == "stream_end", frames
    await client.close()
    resumed, _ = await connect()
    await resumed.start(session_id=session["session_id"], resume_token=session["resume_token"])
    return session["resume_token"]


async def test_message_text_and_resume_tokens_stay_out_of_the_logs(connect, caplog):
    caplog.set_level(logging.DEBUG, logger="sophie_chat")

    token = await converse(connect)

    logged = everything_logged(caplog.records)
    assert [r for r in caplog.records if r.name.startswith("sophie_chat")]
    assert "123.456.789-09" not in logged
    assert "Rua das Flores" not in logged
    assert token not in logged


async def test_log_all_messages_puts_the_text_in_the_logs(connect, caplog, settings):
    settings.SOPHIE_CHAT = {**settings.SOPHIE_CHAT, "LOG_ALL_MESSAGES": True}
    caplog.set_level(logging.DEBUG, logger="sophie_chat")

    await converse(connect)

    logged = everything_logged(caplog.records)
    assert SECRET_QUESTION in logged
    assert SECRET_ANSWER in logged


async def test_records_carry_structured_fields(connect, dummy_llm, caplog):
    caplog.set_level(logging.INFO, logger="sophie_chat")
    dummy_llm.enqueue("Hi.")
    client, _ = await connect()
    session = await client.start()
    await client.ask("Hello")

    stored = [r for r in caplog.records if r.getMessage() == "Answer stored"]
    assert stored
    assert stored[0].name == "sophie_chat.engine"
    assert stored[0].session_id == session["session_id"]
    assert stored[0].model == "dummy"
    assert isinstance(stored[0].total_ms, int)


async def test_a_model_error_is_logged_with_its_cause(connect, dummy_llm, caplog):
    caplog.set_level(logging.WARNING, logger="sophie_chat")
    error = LLMUnavailable("The model provider could not be reached.")
    error.__cause__ = ConnectionRefusedError(111, "Connection refused")  # as `raise ... from` does
    dummy_llm.enqueue_error(error)
    client, _ = await connect()
    await client.start()
    await client.ask("Hello")

    (record,) = [
        r for r in caplog.records if r.name == "sophie_chat.engine" and r.levelno == logging.WARNING
    ]
    assert "LLMUnavailable" in record.getMessage()
    assert "ConnectionRefusedError" in record.getMessage()
    assert "Connection refused" in record.getMessage()
    assert (record.error, record.cause) == ("LLMUnavailable", "ConnectionRefusedError")


def test_the_app_adds_no_log_handlers():
    names = [name for name in logging.root.manager.loggerDict if name.startswith("sophie_chat")]

    assert names
    assert all(not logging.getLogger(name).handlers for name in names)
