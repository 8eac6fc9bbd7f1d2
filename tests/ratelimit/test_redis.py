"""RedisRateLimiter against a real Redis (REDIS_URL)."""

import os
import uuid

import pytest

from sophie_chat.ratelimit.base import RateLimiterUnavailable
from sophie_chat.ratelimit.redis import RedisRateLimiter

pytestmark = pytest.mark.redis


def limiter(**options):
    # A fresh prefix per test: runs never see each other's counters.
    return RedisRateLimiter(url=os.environ["REDIS_URL"], key_prefix=f"test:{uuid.uuid4()}",
                            **options)


async def test_allows_up_to_the_rate_then_refuses_with_retry_after():
    redis_limiter = limiter(rate="3/m", burst=None)
    decisions = [await redis_limiter.hit("user:1") for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert 0 < decisions[-1].retry_after <= 60


async def test_counts_are_shared_by_every_limiter_on_the_same_redis():
    prefix = f"test:{uuid.uuid4()}"
    one = RedisRateLimiter(url=os.environ["REDIS_URL"], key_prefix=prefix, rate="2/m", burst=None)
    two = RedisRateLimiter(url=os.environ["REDIS_URL"], key_prefix=prefix, rate="2/m", burst=None)
    assert (await one.hit("ip:1")).allowed
    assert (await two.hit("ip:1")).allowed
    assert not (await one.hit("ip:1")).allowed


async def test_burst_applies_as_with_the_cache_limiter():
    redis_limiter = limiter(rate="10/m", burst=2)
    decisions = [await redis_limiter.hit("user:1") for _ in range(3)]
    assert [d.allowed for d in decisions] == [True, True, False]


async def test_clear_forgets_a_key():
    redis_limiter = limiter(rate="1/m", burst=None)
    await redis_limiter.hit("user:1")
    await redis_limiter.clear("user:1")
    assert (await redis_limiter.hit("user:1")).allowed


async def test_unreachable_redis_raises_limiter_unavailable():
    unreachable = RedisRateLimiter(url="redis://127.0.0.1:1/0", socket_timeout=0.5)
    with pytest.raises(RateLimiterUnavailable):
        await unreachable.hit("user:1")


def test_only_redis_urls_are_accepted():
    with pytest.raises(ValueError, match="redis://"):
        RedisRateLimiter(url="http://127.0.0.1:6379")
