"""A rate limiter on Redis, shared by every server process.

Each hit is one Lua script, so one atomic round trip: it reads the key's
allowance (:class:`~sophie_chat.ratelimit.base.Allowance`, a token bucket
kept as one number), takes a message from it if one is left and stores it
back, exactly as :class:`~sophie_chat.ratelimit.cache.CacheRateLimiter`
does. The time comes from the server process (the same clock the cache
limiter reads), so keep the machines' clocks in sync, as NTP does. Needs the
``redis`` extra (``pip install "sophie-chat[redis]"``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

from django.core import checks

from sophie_chat.ratelimit.base import (
    EPSILON,
    Decision,
    RateLimiterUnavailable,
    TokenBucketRateLimiter,
)

# KEYS[1]: the key's theoretical arrival time (epoch seconds, as text).
# ARGV: now, interval (seconds), capacity, epsilon. The arithmetic of
# Allowance.take, line for line. Returns {allowed, remaining, wait} with
# wait (seconds, as text: Redis truncates Lua numbers to integers) > 0 when
# refused.
_HIT_SCRIPT = """
local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local capacity = tonumber(ARGV[3])
local epsilon = tonumber(ARGV[4])
local start = tonumber(redis.call('GET', KEYS[1]) or now)
if start < now then
    start = now
end
local ahead = start + interval - now
if ahead > capacity * interval + epsilon then
    return {0, 0, tostring(ahead - capacity * interval)}
end
local tat = start + interval
redis.call('SET', KEYS[1], string.format('%.6f', tat), 'EX', math.ceil(tat - now) + 1)
return {1, math.floor((capacity * interval - ahead) / interval + epsilon), '0'}
"""


class RedisRateLimiter(TokenBucketRateLimiter):
    """Messages per key in Redis. Same ``rate`` and ``burst`` meaning as
    :class:`~sophie_chat.ratelimit.cache.CacheRateLimiter`.

    Options:
        url: the Redis URL, e.g. ``"redis://127.0.0.1:6379/0"``.
        rate: how fast the allowance comes back, e.g. ``"10/m"``.
        burst: how many messages the allowance holds above the rate's amount.
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

    def _key(self, key: str) -> str:
        return f"{self.key_prefix}:{key}"

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
        allowance = self.allowance
        args = [repr(time.time()), repr(allowance.interval), allowance.capacity, EPSILON]
        try:
            self._redis()
            allowed, remaining, wait = await self._script(keys=[self._key(key)], args=args)
        except Exception as exc:
            raise RateLimiterUnavailable(str(exc)) from exc
        if allowed:
            return Decision(True, int(remaining))
        return Decision(False, 0, max(math.ceil(float(wait) - EPSILON), 1))

    async def clear(self, key: str) -> None:
        try:
            await self._redis().delete(self._key(key))
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
