"""A rate limiter on Redis, shared by every server process.

Counting is ``limits``' async Redis storage (redis-py's asyncio client): each
hit is one atomic Lua script, one round trip. Needs the ``redis`` extra
(``pip install "sophie-chat[redis]"``).
"""

from __future__ import annotations

from collections.abc import Sequence

from django.core import checks
from limits.aio.storage import RedisStorage
from limits.aio.strategies import FixedWindowRateLimiter

from sophie_chat.ratelimit.base import WindowedRateLimiter


class RedisRateLimiter(WindowedRateLimiter):
    """Messages per key in Redis. Same ``rate`` and ``burst`` meaning as
    :class:`~sophie_chat.ratelimit.cache.CacheRateLimiter`.

    Options:
        url: the Redis URL, e.g. ``"redis://127.0.0.1:6379/0"``.
        rate: the sustained rate, e.g. ``"10/m"``.
        burst: at most this many messages within ``burst`` rate intervals.
        key_prefix: prefix of the Redis keys.
        socket_timeout: seconds to wait for Redis before the hit fails.
    """

    shared_between_processes = True

    def __init__(
        self,
        *,
        url: str = "redis://127.0.0.1:6379/0",
        rate: str = "10/m",
        burst: int | None = 3,
        key_prefix: str = "sophie_chat:rl",
        socket_timeout: float = 2.0,
    ) -> None:
        if not isinstance(url, str) or not url.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError(f"url must be a redis:// or rediss:// URL, not {url!r}")
        super().__init__(rate=rate, burst=burst)
        self.url = url
        self.key_prefix = key_prefix
        self.socket_timeout = socket_timeout
        self._strategy: FixedWindowRateLimiter | None = None

    @property
    def strategy(self) -> FixedWindowRateLimiter:
        # Built on first use: the client binds to the running event loop.
        if self._strategy is None:
            storage = RedisStorage(
                "async+" + self.url,
                implementation="redispy",
                key_prefix=self.key_prefix,
                socket_timeout=self.socket_timeout,
                socket_connect_timeout=self.socket_timeout,
            )
            self._strategy = FixedWindowRateLimiter(storage)
        return self._strategy

    def check(self, setting: str = "RATE_LIMIT") -> Sequence[checks.CheckMessage]:
        try:
            import redis  # noqa: F401
        except ImportError:
            return [
                checks.Error(
                    "RedisRateLimiter needs the redis package.",
                    hint='pip install "sophie-chat[redis]"',
                    id="sophie_chat.E014",
                )
            ]
        return []
