"""A rate limiter on Redis, shared by every server process.

Each hit is one Lua script, so one atomic round trip, whatever the number of
windows (the sustained rate and the burst): it counts the message in each
window and returns the counts and what is left of each window. Windows are
fixed, as with :class:`~sophie_chat.ratelimit.cache.CacheRateLimiter`: a
window starts with its first message and lasts the rate's period. Needs the
``redis`` extra (``pip install "sophie-chat[redis]"``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from django.core import checks

from sophie_chat.ratelimit.base import Decision, RateLimiterUnavailable, WindowedRateLimiter

# KEYS: one counter per window; ARGV: each window's length in milliseconds.
# Returns each window's count and milliseconds left, in KEYS order.
_HIT_SCRIPT = """
local result = {}
for i, key in ipairs(KEYS) do
    local count = redis.call('INCR', key)
    local left = redis.call('PTTL', key)
    if left < 0 then
        left = tonumber(ARGV[i])
        redis.call('PEXPIRE', key, left)
    end
    result[#result + 1] = count
    result[#result + 1] = left
end
return result
"""


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
        self._client: Any = None
        self._script: Any = None

    def _keys(self, key: str) -> list[str]:
        return [
            f"{self.key_prefix}:{item.amount}/{item.get_expiry()}s:{key}" for item in self.limits
        ]

    def _redis(self) -> Any:
        # Built on first use: the client binds to the running event loop.
        if self._client is None:
            from redis.asyncio import Redis
            from redis.asyncio.retry import Retry
            from redis.backoff import NoBackoff
            from redis.exceptions import ConnectionError as RedisConnectionError

            self._client = Redis.from_url(
                self.url,
                socket_timeout=self.socket_timeout,
                socket_connect_timeout=self.socket_timeout,
                # After Redis restarts, the first command on each pooled
                # connection fails; retried once, it goes over a new one.
                # (A timeout is not retried: a hung Redis must fail fast.)
                retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
                retry_on_error=[RedisConnectionError],
            )
            self._script = self._client.register_script(_HIT_SCRIPT)
        return self._client

    async def hit(self, key: str) -> Decision:
        windows = [item.get_expiry() * 1000 for item in self.limits]
        try:
            self._redis()
            result = await self._script(keys=self._keys(key), args=windows)
        except Exception as exc:
            raise RateLimiterUnavailable(str(exc)) from exc
        allowed, remaining, retry_after = True, self.rate.amount, 0
        for item, count, left_ms in zip(self.limits, result[::2], result[1::2], strict=True):
            remaining = min(remaining, max(item.amount - int(count), 0))
            if int(count) > item.amount:
                allowed = False
                retry_after = max(retry_after, math.ceil(int(left_ms) / 1000), 1)
        return Decision(allowed=allowed, remaining=remaining, retry_after=retry_after)

    async def clear(self, key: str) -> None:
        try:
            await self._redis().delete(*self._keys(key))
        except Exception as exc:
            raise RateLimiterUnavailable(str(exc)) from exc

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
