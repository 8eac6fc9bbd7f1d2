"""The models and the shipped migrations agree."""

import pytest
from django.core.management import call_command


@pytest.mark.django_db
def test_makemigrations_check_finds_nothing_to_do():
    call_command("makemigrations", "sophie_chat", "--check", "--dry-run", verbosity=0)
