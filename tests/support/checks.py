"""Running sophie_chat's system checks under given settings, nothing silenced."""

from __future__ import annotations

from django.core import checks
from django.test import override_settings

from sophie_chat.checks import check_channels, check_settings

#: The smallest valid ``SOPHIE_CHAT``: the checks' tests add to it.
BASE = {"LLM": {"BACKEND": "sophie_chat.llm.dummy.DummyBackend"}}


def messages(**settings) -> list[checks.CheckMessage]:
    """sophie_chat's check messages under these settings (nothing silenced)."""
    with override_settings(**settings):
        return [*check_settings(), *check_channels()]


def ids(**settings) -> list[str]:
    """The IDs of :func:`messages`, sorted."""
    return sorted(m.id for m in messages(**settings))
