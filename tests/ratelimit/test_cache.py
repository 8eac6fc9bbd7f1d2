"""CacheRateLimiter: sustained rate, burst, retry_after, isolation of keys."""

import pytest
from django.core.cache import caches

from sophie_chat.ratelimit.cache import CacheRateLimiter
from sophie_chat.ratelimit.rates import parse_rate


@pytest.mark.parametrize(
    ("text", "amount", "seconds"),
    [
        ("10/m", 10, 60),
        ("100/hour", 100, 3600),
        ("5/30s", 5, 30),
        ("3/s", 3, 1),
        ("1/d", 1, 86400),
        ("5 per 30 seconds", 5, 30),
    ],
)
def test_parse_rate_understands_short_and_long_forms(text, amount, seconds):
    item = parse_rate(text)
    assert (item.amount, item.get_expiry()) == (amount, seconds)


@pytest.mark.parametrize("bad", ["lots", "10/fortnight", "", 10])
def test_parse_rate_rejects_nonsense(bad):
    with pytest.raises(ValueError):
        parse_rate(bad)


async def test_allows_up_to_the_rate_then_refuses_with_retry_after():
    limiter = CacheRateLimiter(rate="3/m", burst=None)
    decisions = [await limiter.hit("user:1") for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert [d.remaining for d in decisions[:3]] == [2, 1, 0]
    assert 0 < decisions[-1].retry_after <= 60


async def test_burst_limits_back_to_back_messages_within_the_rate():
    limiter = CacheRateLimiter(rate="10/m", burst=3)
    decisions = [await limiter.hit("user:1") for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    # 3 within (60 / 10 * 3) = 18 seconds.
    assert 0 < decisions[-1].retry_after <= 18


async def test_keys_are_counted_separately():
    limiter = CacheRateLimiter(rate="1/m", burst=None)
    assert (await limiter.hit("user:1")).allowed
    assert (await limiter.hit("user:2")).allowed
    assert not (await limiter.hit("user:1")).allowed


async def test_clear_forgets_a_key():
    limiter = CacheRateLimiter(rate="1/m", burst=None)
    await limiter.hit("ip:1")
    await limiter.clear("ip:1")
    assert (await limiter.hit("ip:1")).allowed


async def test_counts_live_in_the_configured_cache(settings):
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "limits": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "limits",
        },
    }
    limiter = CacheRateLimiter(rate="5/m", burst=None, cache_alias="limits")
    await limiter.hit("user:9")
    assert caches["limits"].get("sophie_chat:rl:" + limiter.rate.key_for("user:9")) == 1


def test_burst_must_be_a_positive_whole_number():
    with pytest.raises(ValueError, match="burst"):
        CacheRateLimiter(rate="10/m", burst=-1)


def test_shared_between_processes_follows_the_cache_backend(settings):
    assert CacheRateLimiter().shared_between_processes is False
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:6379/15",
        }
    }
    assert CacheRateLimiter().shared_between_processes is True
