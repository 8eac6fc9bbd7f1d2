"""One test per system check ID, plus a clean configuration passing them all."""

from __future__ import annotations

import pytest

from sophie_chat.checks import check_channels, check_settings
from tests.support.checks import BASE, ids, messages

LOCMEM = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
REDIS_CACHE = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://127.0.0.1:6379/15",
    }
}


def test_test_settings_in_debug_are_clean():
    assert ids(DEBUG=True, SOPHIE_CHAT=BASE) == []


def test_e001_sophie_chat_not_a_dict():
    assert ids(DEBUG=True, SOPHIE_CHAT=["LLM"]) == ["sophie_chat.E001"]


def test_e002_backend_path_cannot_be_imported():
    found = messages(DEBUG=True, SOPHIE_CHAT={"LLM": {"BACKEND": "sophie_chat.llm.nope.Nope"}})
    assert [m.id for m in found] == ["sophie_chat.E002"]
    assert 'SOPHIE_CHAT["LLM"]["BACKEND"]' in found[0].msg
    assert found[0].hint


def test_e002_backend_path_is_not_a_class():
    assert "sophie_chat.E002" in ids(
        DEBUG=True, SOPHIE_CHAT={"LLM": {"BACKEND": "sophie_chat.conf.get"}}
    )


def test_e003_unknown_option_is_named():
    found = messages(
        DEBUG=True,
        SOPHIE_CHAT={
            "LLM": {
                "BACKEND": "sophie_chat.llm.dummy.DummyBackend",
                "OPTIONS": {"default_reply": "x", "dealy": 1},
            }
        },
    )
    assert [m.id for m in found] == ["sophie_chat.E003"]
    assert "'dealy'" in found[0].msg
    assert "delay" in found[0].hint


def test_e004_backend_rejects_an_option_value():
    found = messages(DEBUG=True, SOPHIE_CHAT={**BASE, "RATE_LIMIT": {"OPTIONS": {"rate": "lots"}}})
    assert [m.id for m in found] == ["sophie_chat.E004"]
    assert "lots" in found[0].msg


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("MAX_MESSAGE_LENGTH", 0),
        ("MAX_HISTORY_MESSAGES", "50"),
        ("FALLBACK_RESPONSES", "yes"),
        ("RESPONSE_TIMEOUT_SECONDS", -1),
        ("MIN_MESSAGE_LENGTH", 5000),
        ("SYSTEM_PROMPT", 3),
        ("NO_ANSWER_MESSAGE", ["Sorry"]),
        ("TRUSTED_PROXIES", "10.0.0.1"),
        ("ASSISTANT_NAME", ""),
        ("DATABASE_THREADS", 0),
        ("RESPONSE_CACHE", {"TIMEOUT": "1h"}),
        # One error for a value of the wrong type, not one more for each use of it.
        ("CONTEXT_PROVIDERS", "sophie_chat.context.user_context"),
        ("TURN_LOCK_CACHE_ALIAS", 3),
        ("TOKEN_COUNTER", None),
    ],
)
def test_e005_invalid_setting_value(key, value):
    found = messages(DEBUG=True, SOPHIE_CHAT={**BASE, key: value})
    assert {m.id for m in found} == {"sophie_chat.E005"}
    assert key in found[0].msg + found[0].hint


def test_e005_says_what_the_type_is():
    found = messages(DEBUG=True, SOPHIE_CHAT={**BASE, "RETENTION_DAYS": 0})
    assert found[0].msg == (
        'SOPHIE_CHAT["RETENTION_DAYS"] must be a whole number of 1 or more, or None, not 0.'
    )
    assert found[0].hint == 'Fix SOPHIE_CHAT["RETENTION_DAYS"]; its default is 90.'


def test_retention_days_none_keeps_conversations_and_is_valid():
    assert ids(DEBUG=True, SOPHIE_CHAT={**BASE, "RETENTION_DAYS": None}) == []


def test_e006_response_cache_alias_missing():
    assert ids(DEBUG=True, SOPHIE_CHAT={**BASE, "RESPONSE_CACHE": {"CACHE_ALIAS": "answers"}}) == [
        "sophie_chat.E006"
    ]


def test_e007_context_provider_not_importable():
    found = messages(DEBUG=True, SOPHIE_CHAT={**BASE, "CONTEXT_PROVIDERS": ["myapp.nope"]})
    assert [m.id for m in found] == ["sophie_chat.E007"]
    assert "myapp.nope" in found[0].msg


def test_e007_user_type_resolver_not_importable():
    assert ids(DEBUG=True, SOPHIE_CHAT={**BASE, "USER_TYPE_RESOLVER": "nope.nope"}) == [
        "sophie_chat.E007"
    ]


def test_e008_channels_not_installed(settings):
    apps = [app for app in settings.INSTALLED_APPS if app != "channels"]
    assert ids(DEBUG=True, SOPHIE_CHAT=BASE, INSTALLED_APPS=apps) == ["sophie_chat.E008"]


def test_checks_are_registered_with_django(settings):
    from django.core.checks.registry import registry

    assert check_settings in registry.get_checks()
    assert check_channels in registry.get_checks()


def test_e010_openai_backend_without_api_key(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    found = messages(DEBUG=True, SOPHIE_CHAT={})
    assert [m.id for m in found] == ["sophie_chat.E010"]
    assert "OPENAI_API_KEY" in found[0].hint


def test_e010_is_satisfied_by_the_environment_variable(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    assert ids(DEBUG=True, SOPHIE_CHAT={}) == []


def test_e011_openai_option_value_out_of_range():
    assert ids(
        DEBUG=True,
        SOPHIE_CHAT={
            "LLM": {
                "BACKEND": "sophie_chat.llm.openai.OpenAIBackend",
                "OPTIONS": {"api_key": "sk-test", "temperature": 7},
            }
        },
    ) == ["sophie_chat.E011"]


def test_e012_rate_limiter_cache_alias_missing():
    assert ids(
        DEBUG=True, SOPHIE_CHAT={**BASE, "RATE_LIMIT": {"OPTIONS": {"cache_alias": "limits"}}}
    ) == ["sophie_chat.E012"]


def test_e013_rate_limiter_on_dummy_cache():
    assert ids(
        DEBUG=True,
        SOPHIE_CHAT={**BASE, "RESPONSE_CACHE": {"ENABLED": False}},
        CACHES={"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}},
    ) == ["sophie_chat.E013"]


def test_e014_redis_rate_limiter_without_the_redis_package(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "redis", None)  # makes "import redis" fail
    found = messages(DEBUG=True, SOPHIE_CHAT={
        **BASE, "RATE_LIMIT": {"BACKEND": "sophie_chat.ratelimit.redis.RedisRateLimiter"}})
    assert [m.id for m in found] == ["sophie_chat.E014"]
    assert "sophie-chat[redis]" in found[0].hint


def test_e016_turn_lock_cache_alias_missing():
    found = messages(DEBUG=True, SOPHIE_CHAT={**BASE, "TURN_LOCK_CACHE_ALIAS": "locks"})
    assert [m.id for m in found] == ["sophie_chat.E016"]
    assert "TURN_LOCK_CACHE_ALIAS" in found[0].hint


def test_w001_unknown_top_level_key():
    found = messages(DEBUG=True, SOPHIE_CHAT={**BASE, "RATE_LIMITS": {}})
    assert [m.id for m in found] == ["sophie_chat.W001"]
    assert "RATE_LIMITS" in found[0].msg


def test_w010_in_memory_channel_layer_with_debug_off():
    assert "sophie_chat.W010" in ids(DEBUG=False, SOPHIE_CHAT=BASE, CACHES=REDIS_CACHE)


def test_w010_missing_channel_layer_with_debug_off():
    assert "sophie_chat.W010" in ids(
        DEBUG=False, SOPHIE_CHAT=BASE, CACHES=REDIS_CACHE, CHANNEL_LAYERS={}
    )


def test_w011_response_cache_on_local_memory_with_debug_off():
    found = ids(
        DEBUG=False,
        SOPHIE_CHAT={**BASE, "RATE_LIMIT": {"OPTIONS": {"cache_alias": "shared"}}},
        CACHES={**LOCMEM, **{"shared": REDIS_CACHE["default"]}},
        CHANNEL_LAYERS={"default": {"BACKEND": "channels_redis.core.RedisChannelLayer"}},
    )
    assert found == ["sophie_chat.W011"]


def test_w012_limiter_on_a_cache_processes_do_not_share():
    found = ids(
        DEBUG=False,
        SOPHIE_CHAT={**BASE, "RESPONSE_CACHE": {"ENABLED": False}},
        CHANNEL_LAYERS={"default": {"BACKEND": "channels_redis.core.RedisChannelLayer"}},
    )
    assert found == ["sophie_chat.W012"]


def test_production_like_settings_are_clean():
    assert (
        ids(
            DEBUG=False,
            SOPHIE_CHAT=BASE,
            CACHES=REDIS_CACHE,
            CHANNEL_LAYERS={"default": {"BACKEND": "channels_redis.core.RedisChannelLayer"}},
        )
        == []
    )
