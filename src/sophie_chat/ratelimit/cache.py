"""A rate limiter on Django's cache framework.

Each key's allowance (:class:`~sophie_chat.ratelimit.base.Allowance`, a token
bucket) is one number in the cache. The counters are as shared as the cache
is: LocMem counts per process (fine for one process), django-redis or
Memcached count site-wide.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

from django.core import checks
from django.core.cache import InvalidCacheBackendError, caches
from django.core.cache.backends.dummy import DummyCache

from sophie_chat import async_cache
from sophie_chat.ratelimit.base import Decision, RateLimiterUnavailable, TokenBucketRateLimiter

# Caches whose counters live in one process only.
PROCESS_LOCAL_CACHES = (
    "django.core.cache.backends.locmem.LocMemCache",
    "django.core.cache.backends.filebased.FileBasedCache",
)
# A key's lock is held for two cache calls; one left behind expires after this.
LOCK_SECONDS = 2
# How long a message waits for another message of the same key to be counted.
LOCK_WAIT_SECONDS = 3.0


class CacheCounter:
    """One stored number per key in a Django cache alias, read and written under a lock.

    Django's cache API has no compare-and-set, so the read-modify-write of a
    key's allowance holds a short lock taken with ``add`` (atomic in LocMem,
    Redis and Memcached): concurrent messages of one key are counted one
    after the other, never lost. A lock left by a process that died expires
    after :data:`LOCK_SECONDS`.
    """

    def __init__(self, alias: str, prefix: str) -> None:
        self.alias = alias
        self.prefix = prefix

    @property
    def cache(self) -> Any:
        return caches[self.alias]

    async def call(self, method: str, *args: Any) -> Any:
        return await async_cache.call(self.cache, method, *args)

    def key(self, key: str) -> str:
        return f"{self.prefix}:{key}"

    @contextlib.asynccontextmanager
    async def locked(self, key: str) -> AsyncIterator[None]:
        lock = f"{self.key(key)}:lock"
        deadline = time.monotonic() + LOCK_WAIT_SECONDS
        pause = 0.001
        while not await self.call("add", lock, 1, LOCK_SECONDS):
            if time.monotonic() > deadline:
                raise RateLimiterUnavailable(f"the lock of {key!r} stayed taken")
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.05)
        try:
            yield
        finally:
            await self.call("delete", lock)


class CacheRateLimiter(TokenBucketRateLimiter):
    """Messages per key over a Django cache.

    Options:
        rate: how fast the allowance comes back, e.g. ``"10/m"`` (one message
            every 6 seconds), ``"100/hour"``.
        burst: how many messages the allowance holds above the rate's amount
            (10/m with burst 3: 13 in a row, then one every 6 seconds).
            ``None`` or 0: exactly the rate's amount.
        cache_alias: the Django cache to count in (default ``"default"``).
        key_prefix: prefix of the cache keys.
    """

    def __init__(
        self,
        *,
        rate: str = "10/m",
        burst: int | None = 3,
        cache_alias: str = "default",
        key_prefix: str = "sophie_chat:rl",
    ) -> None:
        super().__init__(rate=rate, burst=burst)
        self.cache_alias = cache_alias
        self.counter = CacheCounter(cache_alias, key_prefix)

    async def hit(self, key: str) -> Decision:
        try:
            async with self.counter.locked(key):
                now = time.time()
                stored = await self.counter.call("get", self.counter.key(key))
                decision, tat = self.allowance.take(stored, now)
                if tat is not None:
                    lifetime = self.allowance.lifetime(tat, now)
                    await self.counter.call("set", self.counter.key(key), tat, lifetime)
        except RateLimiterUnavailable:
            raise
        except Exception as exc:
            raise RateLimiterUnavailable(str(exc)) from exc
        return decision

    async def clear(self, key: str) -> None:
        try:
            await self.counter.call("delete", self.counter.key(key))
        except Exception as exc:
            raise RateLimiterUnavailable(str(exc)) from exc

    @property
    def shared_between_processes(self) -> bool:  # type: ignore[override]
        try:
            backend = caches.settings[self.cache_alias]["BACKEND"]
        except KeyError:
            return False
        return backend not in PROCESS_LOCAL_CACHES

    def check(self, setting: str = "RATE_LIMIT") -> Sequence[checks.CheckMessage]:
        from django.conf import settings

        if self.cache_alias not in settings.CACHES:
            return [
                checks.Error(
                    f"The rate limiter's cache alias {self.cache_alias!r} is not in CACHES.",
                    hint=f'Add it to CACHES or set SOPHIE_CHAT["{setting}"]["OPTIONS"]'
                    '["cache_alias"] to an existing alias.',
                    id="sophie_chat.E012",
                )
            ]
        try:
            backend = caches[self.cache_alias]
        except InvalidCacheBackendError:
            return []
        if isinstance(backend, DummyCache):
            return [
                checks.Error(
                    f"The rate limiter counts in cache {self.cache_alias!r}, a DummyCache, "
                    "which stores nothing: nobody would ever be limited.",
                    hint=f'Point SOPHIE_CHAT["{setting}"]["OPTIONS"]["cache_alias"] '
                    "at a real cache.",
                    id="sophie_chat.E013",
                )
            ]
        if not settings.DEBUG and not self.shared_between_processes:
            return [
                checks.Warning(
                    f"The rate limiter counts in cache {self.cache_alias!r} "
                    f"({settings.CACHES[self.cache_alias]['BACKEND']}), which server processes "
                    "do not share: with several processes each one counts on its own.",
                    hint="Use a shared cache (django-redis) for the limiter's cache_alias, or "
                    "sophie_chat.ratelimit.redis.RedisRateLimiter.",
                    id="sophie_chat.W012",
                )
            ]
        return []
