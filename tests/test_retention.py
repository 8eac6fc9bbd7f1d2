"""Retention under a frozen clock, what it takes with a conversation, concurrent runs, tasks."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from io import StringIO

import django
import pytest
import time_machine
from django.core.cache import cache
from django.core.management import call_command
from django.db import connection

from sophie_chat import analytics, retention, tasks
from sophie_chat.models import ChatErrorEvent, ChatSession, DailyAnalytics
from tests.support.records import conversation

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
CUTOFF = NOW - timedelta(days=30)


def cleanup(**options) -> str:
    out = StringIO()
    call_command("cleanup_old_chat_sessions", stdout=out, **options)
    return out.getvalue()


def active_at(moment: datetime, **fields) -> ChatSession:
    """A conversation whose last activity was at ``moment`` (the clock set there)."""
    with time_machine.travel(moment, tick=False):
        session = ChatSession.objects.create(**fields)
        session.messages.create(role="user", content="hello")
        session.touch()
        session.save()
    return session


def test_frozen_clock_deletes_exactly_what_is_past_its_date_and_nothing_on_a_second_run():
    long_gone = active_at(NOW - timedelta(days=200))
    just_past = active_at(CUTOFF - timedelta(seconds=1))
    on_the_cutoff = active_at(CUTOFF)
    just_inside = active_at(CUTOFF + timedelta(seconds=1))
    lapsed = active_at(NOW - timedelta(days=2))
    current = active_at(NOW - timedelta(hours=1))

    with time_machine.travel(NOW, tick=False):
        first = cleanup(days=30)
        second = cleanup(days=30)

    remaining = set(ChatSession.objects.values_list("pk", flat=True))
    assert remaining == {on_the_cutoff.pk, just_inside.pk, lapsed.pk, current.pk}
    assert not {long_gone.pk, just_past.pk} & remaining
    statuses = dict(ChatSession.objects.values_list("pk", "status"))
    assert statuses[current.pk] == "active"
    assert {statuses[s.pk] for s in (on_the_cutoff, just_inside, lapsed)} == {"expired"}
    assert "Deleted 2 conversations (2 messages); marked 3 conversations as expired." in first
    assert "Deleted 0 conversations (0 messages); marked 0 conversations as expired." in second


def test_cleanup_keeps_the_days_figures_for_the_dashboard():
    conversation(at=NOW - timedelta(days=40), turns=[{"rating": "up"}, {}])

    with time_machine.travel(NOW, tick=False):
        report = retention.cleanup(days=30)

    day = (NOW - timedelta(days=40)).date()
    totals = analytics.summarize(day, day).totals
    assert report.deleted_conversations == 1
    assert report.frozen_days == 1
    assert (totals.conversations, totals.answers, totals.thumbs_up) == (1, 2, 1)


def test_cleanup_freezes_only_days_up_to_the_cutoff():
    conversation(at=NOW - timedelta(days=40), turns=[{}])
    conversation(at=NOW - timedelta(days=3), turns=[{}])

    with time_machine.travel(NOW, tick=False):
        retention.cleanup(days=30)

    assert list(DailyAnalytics.objects.values_list("day", flat=True)) == [
        (NOW - timedelta(days=40)).date()
    ]


def test_cleanup_deletes_the_cached_answers_of_deleted_conversations(
    django_capture_on_commit_callbacks,
):
    conversation(at=NOW - timedelta(days=40), turns=[{"cache_key": "sophie_chat:answer:old"}])
    cache.set("sophie_chat:answer:old", {"content": "x"}, None)

    with time_machine.travel(NOW, tick=False), django_capture_on_commit_callbacks(execute=True):
        report = retention.cleanup(days=30)

    assert report.deleted_cached_answers == 1
    assert cache.get("sophie_chat:answer:old") is None


def test_cleanup_deletes_old_error_records_of_no_conversation():
    ChatErrorEvent.objects.create(code="invalid_json", created_at=NOW - timedelta(days=31))
    recent = ChatErrorEvent.objects.create(code="invalid_json", created_at=NOW - timedelta(days=29))

    with time_machine.travel(NOW, tick=False):
        report = retention.cleanup(days=30)

    assert report.deleted_error_records == 1
    assert list(ChatErrorEvent.objects.all()) == [recent]


def test_dry_run_reports_and_changes_nothing():
    active_at(NOW - timedelta(days=40))

    with time_machine.travel(NOW, tick=False):
        report = retention.cleanup(days=30, dry_run=True)

    assert (report.deleted_conversations, report.deleted_messages, report.dry_run) == (1, 1, True)
    assert ChatSession.objects.count() == 1
    assert not DailyAnalytics.objects.exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_runs_on_postgresql_share_the_work_without_errors():
    for index in range(40):
        conversation(at=NOW - timedelta(days=40, minutes=index), turns=[{}])
    results: list[retention.CleanupReport] = []
    errors: list[BaseException] = []
    start = threading.Barrier(3)

    def run() -> None:
        try:
            start.wait()
            with time_machine.travel(NOW, tick=False):
                results.append(retention.cleanup(days=30, batch_size=3))
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert errors == []
    assert sum(r.deleted_conversations for r in results) == 40
    assert not ChatSession.objects.exists()
    assert DailyAnalytics.objects.count() == 1


needs_tasks = pytest.mark.skipif(
    not tasks.TASKS_AVAILABLE,
    reason="needs django.tasks (Django 6.0+) or the django-tasks backport",
)


@needs_tasks
def test_cleanup_task_runs_on_the_tasks_framework():
    active_at(NOW - timedelta(days=40))

    with time_machine.travel(NOW, tick=False):
        result = tasks.cleanup_old_chat_sessions.enqueue(days=30)

    assert result.return_value["deleted_conversations"] == 1
    assert not ChatSession.objects.exists()


@needs_tasks
def test_delete_user_conversations_task(django_user_model):
    maria = django_user_model.objects.create_user("maria")
    conversation(user=maria, turns=[{}])
    kept = conversation(turns=[{}])

    result = tasks.delete_user_conversations.enqueue(maria.pk)

    assert result.return_value == {"conversations": 1, "messages": 2, "cached_answers": 0}
    assert list(ChatSession.objects.all()) == [kept]


def test_tasks_module_imports_without_a_tasks_framework():
    # On Django 5.2 without the django-tasks backport the wrappers are absent, not broken.
    assert tasks.TASKS_AVAILABLE is (
        django.VERSION >= (6, 0) or hasattr(tasks, "cleanup_old_chat_sessions")
    )
    assert tasks.run_cleanup(days=30)["deleted_conversations"] == 0
