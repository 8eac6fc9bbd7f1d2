"""A handoff in operations: the dashboard's figures, the data-rights export and deletion,
the admin showing who answered."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import Permission
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from sophie_chat import analytics, data_rights, handoff
from sophie_chat.models import ChatMessage, ChatSession, Handoff, InternalNote
from tests.support.handoff import handoff_settings
from tests.support.overrides import settings_with
from tests.support.records import conversation

pytestmark = pytest.mark.django_db


@pytest.fixture
def agent(django_user_model):
    user = django_user_model.objects.create_user("ana", first_name="Ana", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="handle_conversation"))
    return user


def handed_over(user, agent, *, state="ended", waited=30, replied=45, score=None, **fields):
    """A conversation of ``user`` handed to ``agent``, with one agent message."""
    session = conversation(user=user, turns=[{"question": "My sink is leaking"}])
    asked = timezone.now() - dt.timedelta(minutes=10)
    claimed = asked + dt.timedelta(seconds=waited) if waited is not None else None
    Handoff.objects.create(
        session=session,
        state=state,
        reason="leak",
        requested_at=asked,
        claimed_at=claimed,
        first_reply_at=asked + dt.timedelta(seconds=replied) if replied is not None else None,
        ended_at=asked + dt.timedelta(minutes=5),
        agent=agent if claimed else None,
        satisfaction_score=score,
        **fields,
    )
    if claimed:
        ChatMessage.objects.create(
            session=session,
            role="agent",
            content="A plumber is on the way.",
            agent=agent,
            metadata={"agent": {"name": "Ana"}},
        )
    return session


def test_the_dashboard_figures_count_outcomes_waits_and_the_persons_rating(
    django_user_model, agent
):
    visitor = django_user_model.objects.create_user("maria")
    handed_over(visitor, agent, waited=20, replied=40, score=5)
    handed_over(visitor, agent, waited=60, replied=90, score=3)
    handed_over(visitor, agent, state="abandoned", waited=None, replied=None)
    handed_over(visitor, agent, state="unavailable", waited=None, replied=None)
    today = timezone.localdate()

    figures = analytics.handoff_figures(today - dt.timedelta(days=1), today)

    assert (figures.requested, figures.taken, figures.resolved) == (4, 2, 2)
    assert (figures.abandoned, figures.unavailable, figures.cancelled) == (1, 1, 0)
    assert (figures.wait.p50, figures.wait.p95) == (20, 60)
    assert (figures.first_reply.p50, figures.first_reply.p95) == (40, 90)
    assert (figures.satisfaction, figures.rated) == (4.0, 2)


def test_the_dashboard_shows_the_handoffs(admin_client, django_user_model, agent):
    handed_over(django_user_model.objects.create_user("maria"), agent, score=4)

    page = admin_client.get(reverse("sophie_chat:analytics")).content.decode()

    assert "Handoffs to a person" in page
    assert "Resolved by a person" in page


def test_the_export_has_the_agents_messages_and_the_handoffs(django_user_model, agent):
    visitor = django_user_model.objects.create_user("maria")
    handed_over(visitor, agent, score=5)

    exported = data_rights.export_user_data(visitor)

    conversation_ = exported["conversations"][0]
    agent_messages = [m for m in conversation_["messages"] if m["role"] == "agent"]
    assert agent_messages[0]["content"] == "A plumber is on the way."
    assert agent_messages[0]["metadata"]["agent"] == {"name": "Ana"}
    assert conversation_["handoffs"][0]["state"] == "ended"
    assert conversation_["handoffs"][0]["satisfaction_score"] == 5


def test_the_export_has_the_agents_notes_about_the_visitor_but_not_their_authors(
    django_user_model, agent
):
    visitor = django_user_model.objects.create_user("maria")
    handoff = handed_over(visitor, agent).handoffs.get()
    InternalNote.objects.create(handoff=handoff, author=agent, content="Gave her a discount.")

    [exported] = data_rights.export_user_data(visitor)["conversations"][0]["handoffs"][0]["notes"]

    assert exported["content"] == "Gave her a discount."
    assert set(exported) == {"content", "created_at"}


@override_settings(SOPHIE_CHAT={"ON_USER_DELETE": "anonymize"})
def test_anonymizing_a_deleted_user_deletes_the_agents_notes_about_them(django_user_model, agent):
    visitor = django_user_model.objects.create_user("maria")
    handoff = handed_over(visitor, agent).handoffs.get()
    InternalNote.objects.create(handoff=handoff, author=agent, content="Lives at Rua X, 12.")

    visitor.delete()

    assert Handoff.objects.filter(pk=handoff.pk).exists()
    assert not InternalNote.objects.filter(handoff=handoff).exists()


def test_deleting_the_visitors_data_deletes_the_handoffs_and_agent_messages(
    django_user_model, agent
):
    visitor = django_user_model.objects.create_user("maria")
    handed_over(visitor, agent)

    data_rights.delete_user_data(visitor)

    assert not Handoff.objects.exists()
    assert not ChatMessage.objects.filter(role="agent").exists()


def test_anonymizing_a_deleted_user_clears_why_they_asked_for_a_person(
    django_user_model, agent
):
    visitor = django_user_model.objects.create_user("maria")
    session = handed_over(visitor, agent)

    with override_settings(SOPHIE_CHAT={"ON_USER_DELETE": "anonymize"}):
        visitor.delete()

    assert ChatSession.objects.filter(pk=session.pk).exists()
    assert Handoff.objects.get(session=session).reason == ""


def test_the_admin_shows_who_answered(admin_client, django_user_model, agent):
    session = handed_over(django_user_model.objects.create_user("maria"), agent)

    page = admin_client.get(
        reverse("admin:sophie_chat_chatsession_change", args=[session.pk])
    ).content.decode()
    handoffs = admin_client.get(reverse("admin:sophie_chat_handoff_changelist")).content.decode()

    assert "ana" in page
    assert "A plumber is on the way." in page
    assert "ana" in handoffs


@pytest.mark.django_db(transaction=True)
async def test_metrics_count_handoffs_and_their_waits(agent):
    prometheus_client = pytest.importorskip("prometheus_client")

    def sample(name, **labels):
        return prometheus_client.REGISTRY.get_sample_value(name, labels) or 0

    before = sample("sophie_chat_handoffs_total", event="claimed")
    waits = sample("sophie_chat_handoff_wait_seconds_count")
    replies = sample("sophie_chat_handoff_first_reply_seconds_count")
    with settings_with(HANDOFF=handoff_settings()):
        session = await ChatSession.objects.acreate()
        found = await handoff.request(session)
        await handoff.claim(found.pk, agent)
        await handoff.send_agent_message(found.pk, agent, "Hello")
        await handoff.send_agent_message(found.pk, agent, "Again")

    assert sample("sophie_chat_handoffs_total", event="claimed") == before + 1
    assert sample("sophie_chat_handoff_wait_seconds_count") == waits + 1
    assert sample("sophie_chat_handoff_first_reply_seconds_count") == replies + 1
