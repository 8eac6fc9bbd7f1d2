"""RedisRateLimiter against a real Redis (REDIS_URL), and against a server of the
test's own to count its commands and restart it."""

import os
import uuid

import pytest

from sophie_chat.ratelimit.base import RateLimiterUnavailable
from sophie_chat.ratelimit.redis import RedisRateLimiter
from tests.support.services import PrivateRedis, redis_server_binary, skip_unless_ci

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


# With a Redis server of the test's own, to count its commands and restart it.


@pytest.fixture
def own_redis(tmp_path):
    if redis_server_binary() is None:
        skip_unless_ci("needs redis-server")
    server = PrivateRedis(tmp_path)
    server.start()
    yield server
    server.stop()


async def test_a_hit_is_one_command_to_redis_even_with_a_burst_window(own_redis):
    import redis

    def calls() -> dict[str, int]:
        stats = observer.info("commandstats")
        return {name.removeprefix("cmdstat_"): s["calls"] for name, s in stats.items()}

    observer = redis.Redis(port=own_redis.port)
    redis_limiter = RedisRateLimiter(url=own_redis.url(), rate="10/m", burst=3)
    await redis_limiter.hit("user:1")  # connects and loads the script
    before = calls()

    decision = await redis_limiter.hit("user:1")

    after = calls()
    observer.close()
    changed = {name: n - before.get(name, 0) for name, n in after.items() if n != before.get(name)}
    # One EVALSHA from the client; INCR and PTTL are the script's, one per window.
    assert changed == {"info": 1, "evalsha": 1, "incr": 2, "pttl": 2}
    assert decision.allowed
    assert decision.remaining == 1  # of the burst window: 3 - 2


async def test_next_hit_after_redis_restarts_is_counted_without_an_error(own_redis):
    redis_limiter = RedisRateLimiter(url=own_redis.url(), rate="10/m", burst=None)
    await redis_limiter.hit("user:1")
    own_redis.stop()
    own_redis.start()

    decision = await redis_limiter.hit("user:1")

    # Counters lived in Redis only: the restarted server starts a new window.
    assert decision.allowed
    assert decision.remaining == 9
