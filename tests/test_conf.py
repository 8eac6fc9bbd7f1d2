"""Settings: their description, merging over defaults, strict backend options, reset on change."""

import ast
import re
from pathlib import Path

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


def test_defaults_are_the_description_of_every_setting():
    assert {setting.name: setting.default for setting in conf.SETTINGS} == conf.DEFAULTS
    assert len(conf.DEFAULTS) == len(conf.SETTINGS)
    assert conf.BACKEND_SETTINGS == ("LLM", "KNOWLEDGE", "RATE_LIMIT")


def test_none_is_allowed_where_the_type_says_so():
    assert conf.setting("RETENTION_DAYS").allows_none
    assert conf.setting("SYSTEM_PROMPT").allows_none
    assert not conf.setting("MAX_MESSAGE_LENGTH").allows_none


def test_the_merged_config_is_not_the_description():
    conf.get("CONTEXT_PROVIDERS").append("changed.by.mistake")
    try:
        assert "changed.by.mistake" not in conf.setting("CONTEXT_PROVIDERS").default
    finally:
        conf.get_config.cache_clear()


SETTINGS_DOC = Path(__file__).resolve().parents[1] / "docs" / "settings.md"
_SECTION = re.compile(r"^### `([A-Z0-9_]+)`[ \t]*$", re.MULTILINE)
_DEFAULT = re.compile(
    r"\s*Default:(?:\s*`(?P<inline>[^`]+)`|\s*```python\n(?P<block>.*?)\n```)", re.DOTALL
)


def documented_defaults() -> dict[str, object]:
    """Each ``### `NAME``` section of docs/settings.md, with the value after its "Default:"."""
    parts = _SECTION.split(SETTINGS_DOC.read_text(encoding="utf-8"))
    found: dict[str, object] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        match = _DEFAULT.match(body)
        assert match, f"docs/settings.md: the {name} section does not start with its Default"
        found[name] = ast.literal_eval(match["inline"] or match["block"])
    return found


def test_every_setting_is_documented_with_its_default():
    documented = documented_defaults()

    missing = [s.name for s in conf.SETTINGS if s.name not in documented]
    wrong = [
        f"{s.name}: documented {documented[s.name]!r}, is {s.default!r}"
        for s in conf.SETTINGS
        if s.name in documented and documented[s.name] != s.default
    ]
    assert not missing, f"docs/settings.md does not document {', '.join(missing)}"
    assert not wrong, "docs/settings.md has another default: " + "; ".join(wrong)


def test_the_docs_document_no_setting_that_does_not_exist():
    unknown = sorted(set(documented_defaults()) - set(conf.DEFAULTS))

    assert not unknown, f"docs/settings.md documents unknown settings: {', '.join(unknown)}"
