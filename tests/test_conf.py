"""Settings: merging over defaults, strict backend options, reset on change."""

import pytest
from django.test import override_settings

from sophie_chat import backends, conf
from sophie_chat.llm.dummy import DummyBackend
from sophie_chat.ratelimit.cache import CacheRateLimiter


def test_defaults_apply_when_setting_is_absent():
    with override_settings(SOPHIE_CHAT=None):
        assert conf.get("MAX_MESSAGE_LENGTH") == 2000
        assert conf.get("LLM")["BACKEND"] == "sophie_chat.llm.openai.OpenAIBackend"


def test_partial_dict_keeps_default_backend_and_other_options():
    with override_settings(SOPHIE_CHAT={"RATE_LIMIT": {"OPTIONS": {"rate": "100/m"}}}):
        limit = conf.get("RATE_LIMIT")
    assert limit["BACKEND"] == "sophie_chat.ratelimit.cache.CacheRateLimiter"
    assert limit["OPTIONS"] == {"rate": "100/m", "burst": 3}


def test_another_backend_starts_from_empty_options():
    with override_settings(SOPHIE_CHAT={"RATE_LIMIT": {"BACKEND": "myapp.Limiter"}}):
        assert conf.get("RATE_LIMIT") == {"BACKEND": "myapp.Limiter", "OPTIONS": {}}


def test_config_is_recomputed_when_settings_change():
    with override_settings(SOPHIE_CHAT={"ASSISTANT_NAME": "Ana"}):
        assert conf.get("ASSISTANT_NAME") == "Ana"
    assert conf.get("ASSISTANT_NAME") == "Sophie"


def test_backends_are_built_once_and_rebuilt_after_a_settings_change():
    first = backends.llm()
    assert backends.llm() is first
    with override_settings(
        SOPHIE_CHAT={
            "LLM": {
                "BACKEND": "sophie_chat.llm.dummy.DummyBackend",
                "OPTIONS": {"default_reply": "changed"},
            }
        }
    ):
        changed = backends.llm()
        assert changed is not first
        assert isinstance(changed, DummyBackend)
        assert changed.default_reply == "changed"


def test_misspelled_option_fails_naming_it():
    with (
        override_settings(
            SOPHIE_CHAT={
                "LLM": {
                    "BACKEND": "sophie_chat.llm.dummy.DummyBackend",
                    "OPTIONS": {"defualt_reply": "x"},
                }
            }
        ),
        pytest.raises(backends.InvalidBackendError, match="'defualt_reply'"),
    ):
        backends.llm()


def test_bad_backend_path_fails_naming_the_setting():
    with (
        override_settings(SOPHIE_CHAT={"KNOWLEDGE": {"BACKEND": "nowhere.Source"}}),
        pytest.raises(backends.InvalidBackendError, match=r'SOPHIE_CHAT\["KNOWLEDGE"\]'),
    ):
        backends.knowledge()


def test_invalid_backend_error_is_improperly_configured():
    from django.core.exceptions import ImproperlyConfigured

    assert issubclass(backends.InvalidBackendError, ImproperlyConfigured)


def test_rate_limiter_is_built_with_merged_options():
    with override_settings(SOPHIE_CHAT={"RATE_LIMIT": {"OPTIONS": {"rate": "100/m"}}}):
        limiter = backends.rate_limiter()
    assert isinstance(limiter, CacheRateLimiter)
    assert limiter.rate.amount == 100


def test_another_cache_setting_builds_the_rate_limiter_again():
    first = backends.rate_limiter()
    dummy = {"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}
    with override_settings(CACHES=dummy):
        assert backends.rate_limiter() is not first
    assert backends.rate_limiter() is not first


def test_only_backend_settings_name_a_backend():
    with pytest.raises(backends.InvalidBackendError, match="ASSISTANT_NAME"):
        backends.handler["ASSISTANT_NAME"]
