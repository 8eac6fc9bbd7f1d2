"""A rate limiter on Django's cache framework, counting with the ``limits`` library.

``limits`` provides the strategy (fixed windows) and the rate parsing; this
module adapts a Django cache alias to its async storage interface. The
counters are as shared as the cache is: LocMem counts per process (fine for
one process), django-redis or Memcached count site-wide.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from django.core import checks
from django.core.cache import InvalidCacheBackendError, caches
from django.core.cache.backends.dummy import DummyCache
from limits.aio.storage import Storage
from limits.aio.strategies import FixedWindowRateLimiter

from sophie_chat import async_cache
from sophie_chat.ratelimit.base import WindowedRateLimiter

# Caches whose counters live in one process only.
PROCESS_LOCAL_CACHES = (
    "django.core.cache.backends.locmem.LocMemCache",
    "django.core.cache.backends.filebased.FileBasedCache",
)


class DjangoCacheStorage(Storage):
    """``limits`` async storage over a Django cache alias (fixed windows only).

    ``incr`` is ``add`` then ``incr``, both atomic in LocMem, Redis and
    Memcached, so concurrent hits are never lost. The window's end is kept
    beside the counter for ``get_expiry``.
    """

    STORAGE_SCHEME = None  # built directly, never from a limits URI

    def __init__(self, alias: str, prefix: str) -> None:
        super().__init__()
        self.alias = alias
        self.prefix = prefix

    @property
    def cache(self) -> Any:
        return caches[self.alias]

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return Exception

    def _key(self, key: str) -> str:
        return f"{self.prefix}:{key}"

    async def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        full = self._key(key)
        if await async_cache.call(self.cache, "add", full, 0, expiry):
            await async_cache.call(self.cache, "set", f"{full}:exp", time.time() + expiry, expiry)
        try:
            return int(await async_cache.call(self.cache, "incr", full, amount))
        except ValueError:
            # Expired between add and incr: start a new window.
            await async_cache.call(self.cache, "set", full, amount, expiry)
            await async_cache.call(self.cache, "set", f"{full}:exp", time.time() + expiry, expiry)
            return amount

    async def get(self, key: str) -> int:
        return int(await async_cache.call(self.cache, "get", self._key(key), 0) or 0)

    async def get_expiry(self, key: str) -> float:
        value = await async_cache.call(self.cache, "get", f"{self._key(key)}:exp")
        return float(value) if value is not None else time.time()

    async def check(self) -> bool:
        try:
            await async_cache.call(self.cache, "get", self._key("__check__"))
        except Exception:
            return False
        return True

    async def reset(self) -> int | None:
        return None  # clearing the whole cache alias is never ours to do

    async def clear(self, key: str) -> None:
        full = self._key(key)
        await async_cache.call(self.cache, "delete_many", [full, f"{full}:exp"])


class CacheRateLimiter(WindowedRateLimiter):
    """Messages per key over a Django cache.

    Options:
        rate: the sustained rate, e.g. ``"10/m"`` (10 a minute), ``"100/hour"``.
        burst: at most this many messages within ``burst`` rate intervals
            (10/m with burst 3: at most 3 within 18 s), on top of the
            sustained rate. ``None`` or 0 turns the burst limit off.
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
        self.storage = DjangoCacheStorage(cache_alias, key_prefix)
        self._strategy = FixedWindowRateLimiter(self.storage)

    @property
    def strategy(self) -> FixedWindowRateLimiter:
        return self._strategy

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
