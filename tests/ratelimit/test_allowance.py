"""What docs/ratelimit.md promises, on a frozen clock, for every built-in limiter.

The promise: ``amount + burst`` messages in a row, then one message back
every ``period / amount`` seconds, up to the full allowance; refused
messages use nothing. The limiters run on LocMem (the default), on Django's
Redis cache (the lock over the network) and straight on Redis.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
import time_machine

from sophie_chat.ratelimit.base import BaseRateLimiter
from sophie_chat.ratelimit.cache import CacheRateLimiter
from sophie_chat.ratelimit.redis import RedisRateLimiter

T0 = datetime(2030, 1, 1, 12, 0, 0, tzinfo=UTC)

Factory = Callable[..., BaseRateLimiter]


@pytest.fixture(
    params=[
        "cache",
        pytest.param("redis-cache", marks=pytest.mark.redis),
        pytest.param("redis", marks=pytest.mark.redis),
    ]
)
def make_limiter(request: pytest.FixtureRequest, settings) -> Factory:
    """Builds the limiter under test; every limiter of a test counts under its own prefix."""
    prefix = f"test:{uuid.uuid4()}"
    if request.param == "redis":
        return lambda **options: RedisRateLimiter(
            url=os.environ["REDIS_URL"], key_prefix=prefix, **options
        )
    if request.param == "redis-cache":
        settings.CACHES = {
            **settings.CACHES,
            "limits": {
                "BACKEND": "django.core.cache.backends.redis.RedisCache",
                "LOCATION": os.environ["REDIS_URL"],
            },
        }
        return lambda **options: CacheRateLimiter(
            cache_alias="limits", key_prefix=prefix, **options
        )
    return lambda **options: CacheRateLimiter(key_prefix=prefix, **options)


@pytest.fixture
def clock():
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


async def allowed(limiter: BaseRateLimiter, count: int, key: str = "user:1") -> list[bool]:
    return [(await limiter.hit(key)).allowed for _ in range(count)]


async def test_default_allows_thirteen_in_a_row_then_one_every_six_seconds(make_limiter, clock):
    limiter = make_limiter(rate="10/m", burst=3)

    assert await allowed(limiter, 13) == [True] * 13
    refused = await limiter.hit("user:1")
    assert (refused.allowed, refused.retry_after) == (False, 6)

    clock.shift(5.999)
    refused = await limiter.hit("user:1")
    assert (refused.allowed, refused.retry_after) == (False, 1)
    clock.shift(0.001)
    assert await allowed(limiter, 2) == [True, False]
    clock.shift(6)
    assert await allowed(limiter, 2) == [True, False]


async def test_remaining_counts_down_the_allowance(make_limiter, clock):
    limiter = make_limiter(rate="10/m", burst=3)
    decisions = [await limiter.hit("user:1") for _ in range(14)]
    assert [d.remaining for d in decisions] == [*range(12, -1, -1), 0]


async def test_a_person_typing_quick_follow_ups_is_never_refused(make_limiter, clock):
    limiter = make_limiter(rate="10/m", burst=3)
    # A message every 6 seconds for an hour: the rate itself.
    for _ in range(600):
        assert (await limiter.hit("user:1")).allowed
        clock.shift(6)


async def test_a_message_every_five_seconds_passes_for_six_minutes(make_limiter, clock):
    limiter = make_limiter(rate="10/m", burst=3)
    passed = 0
    while (await limiter.hit("user:1")).allowed:
        passed += 1
        clock.shift(5)
    assert passed == 73


async def test_a_message_every_two_seconds_passes_nineteen_times(make_limiter, clock):
    limiter = make_limiter(rate="10/m", burst=3)
    passed = 0
    while (await limiter.hit("user:1")).allowed:
        passed += 1
        clock.shift(2)
    assert passed == 19


async def test_never_more_than_the_allowance_plus_one_per_interval(make_limiter, clock):
    limiter = make_limiter(rate="10/m", burst=3)
    accepted_at: list[float] = []
    # A script trying every half second for three minutes.
    for tick in range(360):
        if (await limiter.hit("ip:203.0.113.9")).allowed:
            accepted_at.append(tick / 2)
        clock.shift(0.5)
    for tick in range(360):
        elapsed = tick / 2
        tried = tick + 1
        # As many as it tried, up to the allowance of 13 plus one per 6 seconds gone.
        expected = min(tried, 13 + int(elapsed // 6))
        assert sum(1 for t in accepted_at if t <= elapsed) == expected, elapsed


async def test_refused_messages_use_nothing(make_limiter, clock):
    limiter = make_limiter(rate="10/m", burst=3)
    await allowed(limiter, 13)
    assert await allowed(limiter, 50) == [False] * 50
    clock.shift(6)
    assert await allowed(limiter, 1) == [True]


async def test_the_whole_allowance_comes_back_after_a_pause(make_limiter, clock):
    limiter = make_limiter(rate="10/m", burst=3)
    await allowed(limiter, 13)
    clock.shift(77.999)
    assert sum(await allowed(limiter, 14)) == 12
    clock.shift(3600)
    assert await allowed(limiter, 14) == [True] * 13 + [False]


async def test_without_burst_the_allowance_is_the_rate_amount(make_limiter, clock):
    limiter = make_limiter(rate="2/m", burst=None)
    assert await allowed(limiter, 3) == [True, True, False]
    assert (await limiter.hit("user:1")).retry_after == 30


async def test_keys_have_separate_allowances(make_limiter, clock):
    limiter = make_limiter(rate="1/m", burst=None)
    assert await allowed(limiter, 2, "user:1") == [True, False]
    assert await allowed(limiter, 2, "user:2") == [True, False]


async def test_clear_gives_the_whole_allowance_back(make_limiter, clock):
    limiter = make_limiter(rate="1/m", burst=None)
    await limiter.hit("ip:1")
    await limiter.clear("ip:1")
    assert await allowed(limiter, 2, "ip:1") == [True, False]


async def test_concurrent_messages_are_each_counted(make_limiter, clock):
    limiter = make_limiter(rate="10/m", burst=3)
    decisions = await asyncio.gather(*(limiter.hit("user:1") for _ in range(20)))
    assert sum(d.allowed for d in decisions) == 13


async def test_limiters_of_one_storage_share_the_allowance(make_limiter, clock):
    one, two = make_limiter(rate="2/m", burst=None), make_limiter(rate="2/m", burst=None)
    assert [(await one.hit("ip:1")).allowed, (await two.hit("ip:1")).allowed] == [True, True]
    assert not (await one.hit("ip:1")).allowed
