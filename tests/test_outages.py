"""What a visitor sees when a service the chat depends on fails, in one process.

Real parts stand in for failed services: a Redis URL on a port nothing
listens on, a database trigger that refuses a write. The same failures with
real Redis and PostgreSQL servers stopped and restarted under two server
processes are in tests/production/test_failures.py.
"""

from __future__ import annotations

import logging
import time
from contextlib import asynccontextmanager

import pytest
from asgiref.sync import sync_to_async
from django.db import connection
from django.test import override_settings

from sophie_chat import backends
from sophie_chat.models import ChatMessage
from tests.support.network import free_port, own_address
from tests.support.overrides import settings_with

pytestmark = pytest.mark.django_db(transaction=True)

DB_FAILURE_MARK = "[db-fail]"


def unreachable_redis() -> str:
    return f"redis://127.0.0.1:{free_port()}/0"


def redis_limiter_down():
    return {
        "BACKEND": "sophie_chat.ratelimit.redis.RedisRateLimiter",
        "OPTIONS": {"url": unreachable_redis(), "socket_timeout": 0.5},
    }


@sync_to_async
def stored(session_id):
    return list(
        ChatMessage.objects.filter(session_id=session_id)
        .order_by("created_at")
        .values_list("role", "content")
    )


@sync_to_async
def _execute(statements):
    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)


@asynccontextmanager
async def database_refusing_marked_messages():
    """A trigger makes storing a message that contains DB_FAILURE_MARK fail in the database."""
    table = ChatMessage._meta.db_table
    if connection.vendor == "postgresql":
        create = [
            "CREATE FUNCTION sophie_test_refuse() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'refused by the test trigger'; END $$",
            f"CREATE TRIGGER sophie_test_refuse BEFORE INSERT ON {table} FOR EACH ROW "
            f"WHEN (strpos(NEW.content, '{DB_FAILURE_MARK}') > 0) "
            "EXECUTE FUNCTION sophie_test_refuse()",
        ]
        drop = [
            f"DROP TRIGGER sophie_test_refuse ON {table}",
            "DROP FUNCTION sophie_test_refuse()",
        ]
    elif connection.vendor == "sqlite":
        create = [
            f"CREATE TRIGGER sophie_test_refuse BEFORE INSERT ON {table} "
            f"WHEN instr(NEW.content, '{DB_FAILURE_MARK}') > 0 "
            "BEGIN SELECT RAISE(ABORT, 'refused by the test trigger'); END"
        ]
        drop = ["DROP TRIGGER sophie_test_refuse"]
    else:
        pytest.skip(f"no test trigger for {connection.vendor}")
    await _execute(create)
    try:
        yield
    finally:
        await _execute(drop)


# -- the rate limiter ----------------------------------------------------------------


async def test_message_is_refused_with_service_unavailable_while_the_limiter_is_down(
    connect, dummy_llm
):
    with settings_with(RATE_LIMIT=redis_limiter_down()):
        client, _ = await connect(client=own_address())
        session = await client.start()
        frames = await client.ask("Do you clean ovens?", "lim-1")

    assert [f["type"] for f in frames] == ["error"]
    assert frames[0]["code"] == "service_unavailable"
    assert frames[0]["retry_after"] > 0
    assert frames[0]["reply_to"] == "lim-1"
    assert dummy_llm.requests == []
    assert await stored(session["session_id"]) == []


async def test_message_is_answered_while_the_limiter_is_down_when_failing_open(connect, caplog):
    with settings_with(RATE_LIMIT=redis_limiter_down(), RATE_LIMIT_FAIL_OPEN=True):
        backends.llm().enqueue("Yes, ovens too.")
        client, _ = await connect(client=own_address())
        session = await client.start()
        with caplog.at_level(logging.WARNING, logger="sophie_chat.engine"):
            frames = await client.ask("Do you clean ovens?", "open-1")

    assert frames[-1]["type"] == "stream_end"
    assert frames[-1]["message"]["content"] == "Yes, ovens too."
    assert await stored(session["session_id"]) == [
        ("user", "Do you clean ovens?"),
        ("assistant", "Yes, ovens too."),
    ]
    assert "RATE_LIMIT_FAIL_OPEN" in caplog.text


# -- the database --------------------------------------------------------------------


async def test_database_error_storing_a_message_is_service_unavailable_without_a_model_call(
    connect, dummy_llm
):
    client, _ = await connect(client=own_address())
    session = await client.start()
    async with database_refusing_marked_messages():
        frames = await client.ask(f"Store this {DB_FAILURE_MARK}", "db-1")

    assert [f["type"] for f in frames] == ["error"]
    assert frames[0]["code"] == "service_unavailable"
    assert frames[0]["retry_after"] > 0
    assert frames[0]["reply_to"] == "db-1"
    assert dummy_llm.requests == []
    assert await stored(session["session_id"]) == []


async def test_next_message_is_answered_after_a_database_error(connect, dummy_llm):
    dummy_llm.enqueue("Yes, we clean offices.")
    client, _ = await connect(client=own_address())
    session = await client.start()
    async with database_refusing_marked_messages():
        await client.ask(f"Store this {DB_FAILURE_MARK}", "db-1")
        frames = await client.ask("Do you clean offices?", "db-2")

    assert frames[-1]["type"] == "stream_end"
    assert await stored(session["session_id"]) == [
        ("user", "Do you clean offices?"),
        ("assistant", "Yes, we clean offices."),
    ]


async def test_resending_a_message_refused_by_the_database_stores_it_once(connect, dummy_llm):
    client, _ = await connect(client=own_address())
    session = await client.start()
    async with database_refusing_marked_messages():
        await client.ask(f"First try {DB_FAILURE_MARK}", "db-1")
    # The same client_message_id again, once the database accepts it.
    frames = await client.ask(f"First try {DB_FAILURE_MARK}", "db-1")

    assert frames[-1]["type"] == "stream_end"
    assert [role for role, _content in await stored(session["session_id"])] == [
        "user",
        "assistant",
    ]


# -- the answer cache and the channel layer -----------------------------------------------


async def test_unreachable_answer_cache_is_a_quick_miss(connect):
    answers = {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": unreachable_redis(),
        "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.2, "SOCKET_TIMEOUT": 0.2},
    }
    # A "default" of its own: rate counters left in the shared local-memory
    # storage would count against the next tests.
    default = {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "LOCATION": "test-outages",
    }
    with (
        override_settings(CACHES={"default": default, "answers": answers}),
        settings_with(RESPONSE_CACHE={"ENABLED": True, "CACHE_ALIAS": "answers", "TIMEOUT": 60}),
    ):
        model = backends.llm()
        model.enqueue("We serve São Paulo and Campinas.")
        client, _ = await connect(client=own_address())
        await client.start()
        started = time.monotonic()
        frames = await client.ask("Which cities do you serve?", "cache-1")
        took = time.monotonic() - started

    assert frames[-1]["type"] == "stream_end"
    assert frames[-1]["message"]["metadata"]["cached"] is False
    assert len(model.requests) == 1
    assert took < 2


async def test_tab_keeps_its_conversation_going_while_the_channel_layer_is_down(connect):
    layer = {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [{"address": unreachable_redis(), "socket_connect_timeout": 0.2}]},
    }
    with override_settings(CHANNEL_LAYERS={"default": layer}):
        backends.llm().enqueue("Yes, on Sundays too.")
        client, welcome = await connect(client=own_address())
        session = await client.start()
        frames = await client.ask("Do you work on Sundays?", "layer-1")
        await client.send({"type": "ping"})
        pong = await client.receive()

    assert welcome["type"] == "welcome"
    assert session["type"] == "session"
    assert frames[0]["type"] == "message"
    assert frames[-1]["type"] == "stream_end"
    assert frames[-1]["message"]["content"] == "Yes, on Sundays too."
    assert pong == {"type": "pong"}
