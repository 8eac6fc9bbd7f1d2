"""sophie_chat.W030, W031, W032 and W051: settings that make visitors wait or get refused."""

from __future__ import annotations

import pytest
from django.core.checks.registry import registry
from django.test import override_settings

from sophie_chat.checks import check_database, check_sqlite_connections, check_sqlite_journal
from tests.support.checks import BASE
from tests.support.checks import ids as check_ids

POSTGRES = {"ENGINE": "django.db.backends.postgresql", "NAME": "site"}
SQLITE = {"ENGINE": "django.db.backends.sqlite3", "NAME": "db.sqlite3"}
WAL = "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"


def ids(check, database: dict) -> list[str]:
    with override_settings(DATABASES={"default": database}):
        return [message.id for message in check()]


def test_w030_postgresql_without_persistent_connections_or_pool():
    assert ids(check_database, POSTGRES) == ["sophie_chat.W030"]
    assert ids(check_database, {**POSTGRES, "CONN_MAX_AGE": 0}) == ["sophie_chat.W030"]


@pytest.mark.parametrize(
    "database",
    [
        {**POSTGRES, "CONN_MAX_AGE": None},
        {**POSTGRES, "CONN_MAX_AGE": 60},
        {**POSTGRES, "OPTIONS": {"pool": True}},
        {**POSTGRES, "OPTIONS": {"pool": {"min_size": 2, "max_size": 8}}},
        SQLITE,
    ],
)
def test_w030_not_for_kept_or_pooled_connections_nor_other_databases(database):
    assert ids(check_database, database) == []


def test_w030_hint_names_the_pool_and_conn_max_age():
    with override_settings(DATABASES={"default": POSTGRES}):
        (warning,) = check_database()
    assert "pool" in warning.hint
    assert "CONN_MAX_AGE" in warning.hint


def test_w031_sqlite_in_its_default_journal_mode():
    assert ids(check_sqlite_journal, SQLITE) == ["sophie_chat.W031"]
    assert ids(check_sqlite_journal, {**SQLITE, "OPTIONS": {"timeout": 20}}) == [
        "sophie_chat.W031"
    ]


@pytest.mark.parametrize(
    "database",
    [
        {**SQLITE, "OPTIONS": {"init_command": WAL}},
        {**SQLITE, "OPTIONS": {"init_command": "pragma JOURNAL_MODE = 'wal'"}},
        POSTGRES | {"CONN_MAX_AGE": None},
    ],
)
def test_w031_not_for_wal_or_other_databases(database):
    assert ids(check_sqlite_journal, database) == []


def test_w031_is_a_deploy_check_only():
    # The quickstart's SQLite site passes `manage.py check`; `check --deploy` says it.
    assert check_sqlite_journal not in registry.get_checks(include_deployment_checks=False)
    assert check_sqlite_journal in registry.get_checks(include_deployment_checks=True)
    assert check_database in registry.get_checks(include_deployment_checks=False)


def test_w032_sqlite_opening_a_connection_for_every_unit_of_work():
    assert ids(check_sqlite_connections, SQLITE) == ["sophie_chat.W032"]
    assert ids(check_sqlite_connections, {**SQLITE, "CONN_MAX_AGE": 0}) == ["sophie_chat.W032"]
    with override_settings(DATABASES={"default": SQLITE}):
        (warning,) = check_sqlite_connections()
    assert 'CONN_MAX_AGE"] = None' in warning.hint


@pytest.mark.parametrize(
    "database",
    [
        {**SQLITE, "CONN_MAX_AGE": None},
        {**SQLITE, "CONN_MAX_AGE": 600},
        POSTGRES,
    ],
)
def test_w032_not_for_kept_connections_or_other_databases(database):
    assert ids(check_sqlite_connections, database) == []


def test_w032_is_a_deploy_check_only():
    assert check_sqlite_connections not in registry.get_checks(include_deployment_checks=False)
    assert check_sqlite_connections in registry.get_checks(include_deployment_checks=True)


def test_w051_an_ip_budget_without_max_answer_tokens():
    assert "sophie_chat.W051" in check_ids(SOPHIE_CHAT={**BASE, "DAILY_TOKEN_BUDGET_IP": 20_000})


@pytest.mark.parametrize(
    "extra",
    [
        {"DAILY_TOKEN_BUDGET_IP": 20_000, "MAX_ANSWER_TOKENS": 800},
        {"DAILY_TOKEN_BUDGET_USER": 50_000},
        {},
    ],
)
def test_w051_not_with_max_answer_tokens_or_without_an_ip_budget(extra):
    assert "sophie_chat.W051" not in check_ids(SOPHIE_CHAT={**BASE, **extra})
