"""CacheRateLimiter and rate strings (the allowance itself: test_allowance.py)."""

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
    assert caches["limits"].get("sophie_chat:rl:user:9") is not None
    assert caches["default"].get("sophie_chat:rl:user:9") is None


async def test_a_lock_left_behind_makes_the_limiter_unavailable_not_stuck(monkeypatch):
    from sophie_chat.ratelimit import cache as cache_module
    from sophie_chat.ratelimit.base import RateLimiterUnavailable

    monkeypatch.setattr(cache_module, "LOCK_WAIT_SECONDS", 0.05)
    caches["default"].add("sophie_chat:rl:user:1:lock", 1, 60)
    with pytest.raises(RateLimiterUnavailable, match="lock"):
        await CacheRateLimiter().hit("user:1")


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
