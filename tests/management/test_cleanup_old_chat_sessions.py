from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings
from django.utils import timezone

from sophie_chat.models import ChatAnalytics, ChatMessage, ChatSession, MessageFeedback

pytestmark = pytest.mark.django_db

Status = ChatSession.Status


def cleanup(**options):
    out = StringIO()
    call_command("cleanup_old_chat_sessions", stdout=out, **options)
    return out.getvalue()


def conversation(*, idle_days=0, expired=False, status=Status.ACTIVE, messages=2):
    """A session last active ``idle_days`` ago, with ``messages`` messages."""
    now = timezone.now()
    session = ChatSession.objects.create(status=status)
    for n in range(messages):
        ChatMessage.objects.create(session=session, role="user", content=f"message {n}")
    # update() because updated_at is auto_now.
    ChatSession.objects.filter(pk=session.pk).update(
        created_at=now - timedelta(days=idle_days + 1),
        updated_at=now - timedelta(days=idle_days),
        expires_at=now - timedelta(hours=1) if expired else now + timedelta(hours=1),
    )
    return session


def test_active_session_past_expiry_is_marked_expired():
    session = conversation(expired=True)

    cleanup()

    session.refresh_from_db()
    assert session.status == Status.EXPIRED


def test_expiring_keeps_last_activity():
    session = conversation(idle_days=3, expired=True)
    before = ChatSession.objects.get(pk=session.pk).updated_at

    cleanup()

    assert ChatSession.objects.get(pk=session.pk).updated_at == before


def test_session_not_yet_expired_stays_active():
    session = conversation()

    cleanup()

    session.refresh_from_db()
    assert session.status == Status.ACTIVE


def test_closed_session_past_expiry_stays_closed():
    session = conversation(expired=True, status=Status.CLOSED)

    cleanup()

    session.refresh_from_db()
    assert session.status == Status.CLOSED


def test_session_idle_longer_than_days_is_deleted_with_its_messages():
    old = conversation(idle_days=40, messages=3)

    out = cleanup(days=30)

    assert not ChatSession.objects.filter(pk=old.pk).exists()
    assert not ChatMessage.objects.filter(session_id=old.pk).exists()
    assert "Deleted 1 conversation (3 messages); marked 0 conversations as expired." in out


def test_deleting_a_session_removes_its_feedback_and_analytics():
    old = conversation(idle_days=40)
    ChatAnalytics.objects.create(session=old)
    MessageFeedback.objects.create(message=old.messages.first(), rating="up")

    cleanup(days=30)

    assert not ChatAnalytics.objects.exists()
    assert not MessageFeedback.objects.exists()


def test_old_session_with_recent_activity_is_kept():
    # Created long ago, but active yesterday: age is measured by last activity.
    session = conversation(idle_days=1)
    ChatSession.objects.filter(pk=session.pk).update(
        created_at=timezone.now() - timedelta(days=365)
    )

    cleanup(days=30)

    assert ChatSession.objects.filter(pk=session.pk).exists()


def test_recent_sessions_are_kept():
    recent = [conversation(idle_days=5), conversation(idle_days=29)]

    cleanup(days=30)

    assert set(ChatSession.objects.values_list("pk", flat=True)) == {s.pk for s in recent}


def test_days_defaults_to_retention_days_setting():
    conversation(idle_days=10)
    kept = conversation(idle_days=2)

    with override_settings(SOPHIE_CHAT={"RETENTION_DAYS": 7}):
        cleanup()

    assert list(ChatSession.objects.values_list("pk", flat=True)) == [kept.pk]


def test_default_retention_is_ninety_days():
    conversation(idle_days=91)
    kept = conversation(idle_days=89)

    cleanup()

    assert list(ChatSession.objects.values_list("pk", flat=True)) == [kept.pk]


def test_retention_days_none_keeps_every_conversation():
    conversation(idle_days=1000)

    with override_settings(SOPHIE_CHAT={"RETENTION_DAYS": None}):
        cleanup()

    assert ChatSession.objects.count() == 1


def test_second_run_changes_nothing():
    conversation(idle_days=40)
    conversation(expired=True)
    cleanup(days=30)

    out = cleanup(days=30)

    assert "Deleted 0 conversations (0 messages); marked 0 conversations as expired." in out


def test_batches_smaller_than_the_work_finish_it():
    for _ in range(7):
        conversation(idle_days=40, messages=1)
    for _ in range(5):
        conversation(expired=True)
    kept = conversation(idle_days=1)

    out = cleanup(days=30, batch_size=2)

    assert "Deleted 7 conversations (7 messages); marked 5 conversations as expired." in out
    assert ChatSession.objects.count() == 6
    assert ChatSession.objects.filter(status=Status.ACTIVE).get().pk == kept.pk


def test_dry_run_changes_nothing():
    conversation(idle_days=40, messages=3)
    expiring = conversation(expired=True)

    out = cleanup(days=30, dry_run=True)

    assert "would delete 1 conversation (3 messages) and mark 1 conversation as expired." in out
    assert ChatSession.objects.count() == 2
    assert ChatSession.objects.get(pk=expiring.pk).status == Status.ACTIVE


@pytest.mark.parametrize("option", ["--days=0", "--batch-size=0", "--days=soon"])
def test_non_positive_numbers_are_refused(option):
    with pytest.raises(CommandError, match="must be a whole number >= 1"):
        call_command("cleanup_old_chat_sessions", option)
