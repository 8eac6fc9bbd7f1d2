"""Checks of the operations settings: E005 for bad values, W014 and W015."""

from __future__ import annotations

import pytest
from django.core import checks
from django.test import override_settings

from sophie_chat import metrics
from sophie_chat.checks import check_settings
from tests.support.checks import BASE


def found(**sophie) -> list[checks.CheckMessage]:
    with override_settings(DEBUG=True, SOPHIE_CHAT={**BASE, **sophie}):
        return list(check_settings())


def test_operations_settings_have_clean_defaults():
    assert found() == []


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MODEL_PRICES", {"gpt-4o-mini": 0.15}),
        ("MODEL_PRICES", {"gpt-4o-mini": {"input": "cheap"}}),
        ("MODEL_PRICES", {"gpt-4o-mini": {"in": 0.15}}),
        ("MODEL_PRICES", ["gpt-4o-mini"]),
        ("COST_CURRENCY", 840),
        ("ON_USER_DELETE", "keep"),
        ("METRICS", {"ENABLED": "yes"}),
        ("METRICS", {"TOKEN": 123}),
        ("METRICS", {"ENDPIONT": True}),
    ],
)
def test_e005_bad_operations_setting_is_named(name, value):
    messages = found(**{name: value})

    assert [m.id for m in messages] == ["sophie_chat.E005"]
    assert f'SOPHIE_CHAT["{name}"]' in messages[0].msg


def test_model_prices_per_million_tokens_are_accepted():
    assert (
        found(MODEL_PRICES={"gpt-4o-mini": {"input": 0.15, "output": 0.6}, "llama3": {"input": 0}})
        == []
    )


def test_w014_metrics_endpoint_without_prometheus_client(monkeypatch):
    monkeypatch.setattr(metrics, "prometheus_client", None)

    messages = found(METRICS={"ENDPOINT": True, "TOKEN": "t"})

    assert [m.id for m in messages] == ["sophie_chat.W014"]
    assert "prometheus" in messages[0].hint


def test_w015_retention_shorter_than_the_session_timeout():
    messages = found(RETENTION_DAYS=1, SESSION_TIMEOUT_HOURS=48)

    assert [m.id for m in messages] == ["sophie_chat.W015"]
