"""sophie_chat.E050 and W050: ALLOWED_ORIGINS, what the chat's WebSocket accepts pages from."""

from __future__ import annotations

import pytest
from django.test import override_settings

from sophie_chat.checks import check_allowed_origins, check_origins_deploy
from tests.support.checks import BASE


def run(check, **sophie_chat):
    with override_settings(SOPHIE_CHAT={**BASE, **sophie_chat}):
        return [message.id for message in check()]


@pytest.mark.parametrize(
    "entry", ["example.com", "https://example.com/chat", "ftp://example.com", "https://:80"]
)
def test_e050_an_allowed_origin_that_is_not_an_origin(entry):
    assert run(check_allowed_origins, ALLOWED_ORIGINS=["https://ok.example", entry]) == [
        "sophie_chat.E050"
    ]


def test_e050_not_raised_for_origins_with_and_without_port():
    origins = ["https://www.example.com", "http://localhost:8000", "https://example.com/"]
    assert run(check_allowed_origins, ALLOWED_ORIGINS=origins) == []


def test_w050_deploy_check_when_allowed_origins_is_not_set():
    assert run(check_origins_deploy) == ["sophie_chat.W050"]
    assert run(check_origins_deploy, ALLOWED_ORIGINS=["https://www.example.com"]) == []
