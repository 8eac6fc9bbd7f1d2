"""Settings overrides shared by the test modules."""

from __future__ import annotations

from typing import Any

from django.test import override_settings


def settings_with(**overrides: Any) -> override_settings:
    """``override_settings`` of ``SOPHIE_CHAT`` keys over the test settings' own."""
    from django.conf import settings

    return override_settings(SOPHIE_CHAT={**settings.SOPHIE_CHAT, **overrides})
