"""Redis caches spoken to from the event loop: the same keys and values as the cache's own
methods, so either side reads what the other wrote (docs/performance.md)."""

from __future__ import annotations

import os
import secrets
import threading

import pytest
from asgiref.sync import sync_to_async
from django.core.cache import caches
from django.test import override_settings

from sophie_chat import async_cache

pytestmark = pytest.mark.redis

BACKENDS = {
    "django-redis": "django_redis.cache.RedisCache",
    "django": "django.core.cache.backends.redis.RedisCache",
}


def redis_cache(backend: str, **options):
    return {
        "BACKEND": BACKENDS[backend],
        "LOCATION": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15"),
        "KEY_PREFIX": f"sophie-test-{secrets.token_hex(4)}",
        "OPTIONS": options,
    }


@pytest.fixture(params=sorted(BACKENDS))
def cache(request):
    with override_settings(CACHES={"default": redis_cache(request.param)}):
        yield caches["default"]


def sync(cache, method, *args):
    return sync_to_async(getattr(cache, method), thread_sensitive=False)(*args)


async def test_the_event_loop_speaks_to_redis_itself(cache, monkeypatch):
    # No worker thread: the methods run in the event loop's own thread.
    threads = set()
    original = cache.__class__.get

    def spy(self, *args, **kwargs):
        threads.add(threading.get_ident())
        return original(self, *args, **kwargs)

    monkeypatch.setattr(cache.__class__, "get", spy)
    await async_cache.call(cache, "set", "k", {"a": 1}, 60)
    assert await async_cache.call(cache, "get", "k") == {"a": 1}
    assert threads == set()


async def test_values_written_natively_read_through_the_cache_and_back(cache):
    answer = {"content": "Sim, aos domingos também.", "sources": [{"title": "Horário"}]}
    await async_cache.call(cache, "set", "answer", answer, 60)
    assert await sync(cache, "get", "answer") == answer

    await sync(cache, "set", "count", 7, 60)
    await sync(cache, "set", "text", "olá", 60)
    assert await async_cache.call(cache, "get", "count") == 7
    assert await async_cache.call(cache, "get", "text") == "olá"
    assert await async_cache.call(cache, "get", "missing") is None


async def test_add_only_when_absent_and_delete_says_whether_it_was_there(cache):
    assert await async_cache.call(cache, "add", "lease", "me", 60) is True
    assert await async_cache.call(cache, "add", "lease", "you", 60) is False
    assert await sync(cache, "get", "lease") == "me"
    assert await async_cache.call(cache, "delete", "lease") is True
    assert await async_cache.call(cache, "delete", "lease") is False
    assert await sync(cache, "get", "lease") is None


async def test_the_timeout_is_the_caches(cache):
    await async_cache.call(cache, "set", "brief", "x", 30)
    import redis

    client = redis.Redis.from_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15"))
    key = cache.make_key("brief")
    if hasattr(cache, "client"):
        key = str(cache.client.make_key("brief"))
    assert 28_000 <= client.pttl(key) <= 30_000
    client.close()


async def test_a_zero_timeout_keeps_the_caches_own_meaning(cache):
    await async_cache.call(cache, "set", "gone", "x", 60)
    await async_cache.call(cache, "set", "gone", "y", 0)
    assert await sync(cache, "get", "gone") is None


@pytest.mark.parametrize(
    "options",
    [
        {"CONNECTION_POOL_CLASS": "redis.connection.ConnectionPool"},
        {"IGNORE_EXCEPTIONS": True},
    ],
)
async def test_django_redis_options_it_does_not_know_go_to_a_thread(options):
    with override_settings(CACHES={"default": redis_cache("django-redis", **options)}):
        cache = caches["default"]
        assert async_cache._native(cache) is None
        await async_cache.call(cache, "set", "k", "v", 60)
        assert await async_cache.call(cache, "get", "k") == "v"


async def test_delete_if_deletes_only_the_value_it_was_given(cache):
    await async_cache.call(cache, "add", "lease", "mine", 60)
    assert await async_cache.delete_if(cache, "lease", "theirs") is False
    assert await sync(cache, "get", "lease") == "mine"
    assert await async_cache.delete_if(cache, "lease", "mine") is True
    assert await sync(cache, "get", "lease") is None
    assert await async_cache.delete_if(cache, "lease", "mine") is False


async def test_delete_if_on_a_value_the_cache_itself_wrote(cache):
    await sync(cache, "set", "n", 42, 60)
    assert await async_cache.delete_if(cache, "n", 41) is False
    assert await async_cache.delete_if(cache, "n", 42) is True


async def test_delete_if_on_a_local_memory_cache():
    with override_settings(
        CACHES={"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    ):
        cache = caches["default"]
        cache.set("lease", "mine", 60)
        assert await async_cache.delete_if(cache, "lease", "theirs") is False
        assert await async_cache.delete_if(cache, "lease", "mine") is True
        assert cache.get("lease") is None
