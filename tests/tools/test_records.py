"""Tool call records: the admin (read-only), data rights, retention, the dashboard, metrics."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from prometheus_client import REGISTRY

from sophie_chat import data_rights, retention
from sophie_chat.models import ChatSession, ToolCall
from tests.support.overrides import settings_with

pytestmark = pytest.mark.django_db


@pytest.fixture
def maria(django_user_model):
    return django_user_model.objects.create_user("maria", password="x")


@pytest.fixture
def calls(maria):
    """Maria's conversation with a confirmed rename and a failed lookup; another's call."""
    session = ChatSession.objects.create(user=maria, user_type="client")
    renamed = ToolCall.objects.create(
        session=session,
        name="rename_me",
        arguments={"first_name": "[redacted]", "note": "call me Mari"},
        status="ok",
        duration_ms=12,
        confirmation="accepted",
        confirmed_by=maria,
        decided_at=timezone.now(),
    )
    ToolCall.objects.create(session=session, name="my_profile", status="timeout")
    other = ChatSession.objects.create(user_type="anonymous")
    ToolCall.objects.create(session=other, name="my_profile", status="refused")
    ToolCall.objects.create(
        session=other, name="rename_me", status="cancelled", confirmation="declined"
    )
    return session, renamed


def test_the_admin_lists_calls_read_only(admin_client, calls):
    _session, renamed = calls
    listing = admin_client.get(reverse("admin:sophie_chat_toolcall_changelist"))
    assert listing.status_code == 200
    assert b"rename_me" in listing.content
    page = admin_client.get(reverse("admin:sophie_chat_toolcall_change", args=[renamed.pk]))
    assert page.status_code == 200
    assert b'name="_save"' not in page.content
    assert admin_client.get(reverse("admin:sophie_chat_toolcall_add")).status_code == 403


def test_the_export_has_the_calls_of_the_conversation(maria, calls):
    exported = data_rights.export_user_data(maria)
    [conversation] = exported["conversations"]
    assert [call["name"] for call in conversation["tool_calls"]] == ["rename_me", "my_profile"]
    renamed = conversation["tool_calls"][0]
    assert renamed["arguments"] == {"first_name": "[redacted]", "note": "call me Mari"}
    assert (renamed["status"], renamed["confirmation"]) == ("ok", "accepted")
    assert renamed["confirmed_by"] == maria.pk


def test_deleting_the_data_deletes_the_calls(maria, calls):
    data_rights.delete_user_data(maria)
    assert ToolCall.objects.count() == 2  # the other visitor's


def test_deleting_the_user_anonymized_keeps_counts_not_arguments(maria, calls):
    with settings_with(ON_USER_DELETE="anonymize"):
        maria.delete()
    renamed = ToolCall.objects.get(name="rename_me", status="ok")
    assert renamed.arguments == {}
    assert renamed.confirmed_by is None
    assert ToolCall.objects.count() == 4


def test_deleting_the_user_deletes_their_calls(maria, calls):
    maria.delete()
    assert ToolCall.objects.count() == 2


def test_retention_deletes_the_calls_of_old_conversations(calls):
    session, _renamed = calls
    ChatSession.objects.filter(pk=session.pk).update(
        updated_at=timezone.now() - timedelta(days=100)
    )
    retention.cleanup(days=90)
    assert ToolCall.objects.count() == 2


def test_the_dashboard_shows_calls_failures_and_confirmations(admin_client, calls):
    page = admin_client.get(reverse("sophie_chat:analytics")).content.decode()
    assert "<code>rename_me</code>" in page
    from sophie_chat import analytics

    today = timezone.localdate()
    usage = {row.name: row for row in analytics.tool_usage(today, today)}
    assert (usage["rename_me"].calls, usage["rename_me"].accepted) == (2, 1)
    assert usage["rename_me"].declined == 1
    assert (usage["my_profile"].failed, usage["my_profile"].refused) == (1, 1)


def test_metrics_count_calls_and_confirmations():
    from sophie_chat import metrics

    def value(name, **labels):
        return REGISTRY.get_sample_value(name, labels) or 0

    before = value("sophie_chat_tool_calls_total", tool="add", status="ok")
    decided = value("sophie_chat_confirmations_total", outcome="declined")
    metrics.tool_called("add", "ok")
    metrics.confirmation_decided("declined")
    assert value("sophie_chat_tool_calls_total", tool="add", status="ok") == before + 1
    assert value("sophie_chat_confirmations_total", outcome="declined") == decided + 1
