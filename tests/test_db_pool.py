"""The deployment page's pool settings open connections on every supported Django.

Not marked ``postgres``: it runs in every test environment (Django 5.2, 6.0
and 6.1 differ in how a pool gets its connection check), against the local
PostgreSQL.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import django
import pytest

from sophie_chat.db import check_pooled_connection, pool_options
from tests.production.recipe import recipe_source
from tests.support.services import _reachable, skip_unless_ci

DATABASE_URL = os.environ.get("DATABASE_URL") or "postgres://postgres@127.0.0.1:5432/test"


@pytest.fixture
def postgres_url() -> str:
    if not _reachable(DATABASE_URL, 5432):
        skip_unless_ci(f"PostgreSQL at {DATABASE_URL} is not answering")
    return DATABASE_URL


def test_pool_options_add_sophies_check_only_where_django_takes_it():
    options = pool_options(min_size=2, max_size=8)
    assert options["min_size"] == 2
    if django.VERSION >= (6, 1):
        assert options["check"] is check_pooled_connection
    else:
        assert "check" not in options


def test_the_deployment_settings_connect_to_postgresql(postgres_url):
    # A fresh interpreter configured by the page's block exactly as printed.
    program = textwrap.dedent(
        """
        import sys
        import django
        from django.conf import settings

        namespace = {}
        exec(sys.stdin.read(), namespace)
        settings.configure(DATABASES=namespace["DATABASES"])
        django.setup()
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            print(cursor.fetchone()[0], connection.pool is not None)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", program],
        input=recipe_source(),
        capture_output=True,
        text=True,
        timeout=60,
        env={
            **os.environ,
            "DATABASE_URL": postgres_url,
            "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15"),
        },
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["1", "True"]
