"""RedisRateLimiter against a real Redis (REDIS_URL), and against a server of the
test's own to count its commands and restart it (the allowance itself:
test_allowance.py)."""

import pytest

from sophie_chat.ratelimit.base import RateLimiterUnavailable
from sophie_chat.ratelimit.redis import RedisRateLimiter
from tests.support.services import PrivateRedis, redis_server_binary, skip_unless_ci

pytestmark = pytest.mark.redis


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


async def test_a_hit_is_one_command_to_redis(own_redis):
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
    # One EVALSHA from the client; GET and SET are the script's.
    assert changed == {"info": 1, "evalsha": 1, "get": 1, "set": 1}
    assert decision.allowed
    assert decision.remaining == 11  # of 10 + 3


async def test_next_hit_after_redis_restarts_is_counted_without_an_error(own_redis):
    redis_limiter = RedisRateLimiter(url=own_redis.url(), rate="10/m", burst=None)
    await redis_limiter.hit("user:1")
    own_redis.stop()
    own_redis.start()

    decision = await redis_limiter.hit("user:1")

    # Counters lived in Redis only: the restarted server gives the whole allowance back.
    assert decision.allowed
    assert decision.remaining == 9
