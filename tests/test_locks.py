"""One turn at a time per session: the lease a turn takes in a shared cache.

A lease held by "another process" is a key written straight into the
shared cache (django-redis on a real Redis, database 6 of ``REDIS_URL``'s
server); the turns are real turns through the consumer.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis
from django.conf import settings as django_settings
from django.core.cache import caches
from django.test import override_settings

from sophie_chat import backends, conf, locks
from tests.support.network import free_port, own_address

LOCKS_DB = 6


def locks_redis_url() -> str:
    parts = urlsplit(os.environ["REDIS_URL"])
    return urlunsplit(parts._replace(path=f"/{LOCKS_DB}"))


def with_lock_cache(location: str, **options):
    cache = {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": location,
        # Every run its own keys: runs may share this Redis database.
        "KEY_PREFIX": f"test-locks-{uuid.uuid4().hex}",
        "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.5, "SOCKET_TIMEOUT": 0.5, **options},
    }
    # A "default" of its own: rate counters left in the shared local-memory
    # storage would count against the next tests.
    default = {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "LOCATION": uuid.uuid4().hex,
    }
    return override_settings(
        CACHES={"default": default, "locks": cache},
        SOPHIE_CHAT={**django_settings.SOPHIE_CHAT, "TURN_LOCK_CACHE_ALIAS": "locks"},
    )


async def held_by_another_process(session_id: str) -> None:
    await asyncio.to_thread(caches["locks"].add, locks.KEY_PREFIX + session_id, "other", 60)


async def released_by_the_other_process(session_id: str) -> None:
    await asyncio.to_thread(caches["locks"].delete, locks.KEY_PREFIX + session_id)


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
async def test_message_waits_while_another_process_answers_the_session(connect):
    with with_lock_cache(locks_redis_url()):
        backends.llm().enqueue("Yes, we do.")
        client, _ = await connect(client=own_address())
        session = await client.start()
        await held_by_another_process(session["session_id"])
        await client.send({"type": "message", "content": "Do you paint?", "client_message_id": "w"})

        assert await client.nothing_more(timeout=0.5)
        await released_by_the_other_process(session["session_id"])
        frames = await client.receive_until("stream_end")

    assert frames[0]["message"]["content"] == "Do you paint?"
    assert frames[-1]["message"]["content"] == "Yes, we do."


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
async def test_lease_is_released_when_the_answer_is_stored(connect):
    with with_lock_cache(locks_redis_url()):
        client, _ = await connect(client=own_address())
        session = await client.start()
        await client.ask("Do you paint?", "r-1")
        # Released as the turn ends, just after the answer's last frame.
        for _ in range(50):
            held = await asyncio.to_thread(
                caches["locks"].get, locks.KEY_PREFIX + session["session_id"]
            )
            if held is None:
                break
            await asyncio.sleep(0.02)

    assert held is None


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
async def test_lease_expires_on_its_own_after_the_response_timeout_and_a_margin(connect):
    with with_lock_cache(locks_redis_url()):
        backends.llm().first_token_delay = 0.5  # the turn still runs when TTL is read
        client, _ = await connect(client=own_address())
        session = await client.start()
        await client.send({"type": "message", "content": "Do you paint?", "client_message_id": "e"})
        await client.receive()  # stored: the turn holds its lease
        key = caches["locks"].make_key(locks.KEY_PREFIX + session["session_id"])
        server = redis.Redis.from_url(locks_redis_url())
        ttl = await asyncio.to_thread(server.ttl, key)
        server.close()
        await client.receive_until("stream_end")

    expected = conf.get("RESPONSE_TIMEOUT_SECONDS") + locks.LEASE_MARGIN_SECONDS
    assert expected - 5 <= ttl <= expected


@pytest.mark.django_db(transaction=True)
async def test_unreachable_lock_cache_does_not_stop_the_chat(connect, caplog):
    with with_lock_cache(f"redis://127.0.0.1:{free_port()}/0"):
        backends.llm().enqueue("Yes, we do.")
        client, _ = await connect(client=own_address())
        await client.start()
        frames = await client.ask("Do you paint?", "u-1")

    assert frames[-1]["type"] == "stream_end"
    assert "Turn lock cache 'locks' unavailable" in caplog.text


def test_local_memory_cache_orders_turns_per_process_only(settings):
    settings.SOPHIE_CHAT = {**settings.SOPHIE_CHAT, "TURN_LOCK_CACHE_ALIAS": "default"}
    assert settings.CACHES["default"]["BACKEND"].endswith("LocMemCache")

    assert locks.shared_cache_alias() is None


def test_turn_lock_can_be_turned_off(settings):
    settings.CACHES = {
        **settings.CACHES,
        "shared": {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": "redis://x:1/0"},
    }
    settings.SOPHIE_CHAT = {**settings.SOPHIE_CHAT, "TURN_LOCK_CACHE_ALIAS": "shared"}
    assert locks.shared_cache_alias() == "shared"

    settings.SOPHIE_CHAT = {**settings.SOPHIE_CHAT, "TURN_LOCK_CACHE_ALIAS": None}
    assert locks.shared_cache_alias() is None
