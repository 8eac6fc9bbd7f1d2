"""The analytics dashboard at chat/analytics/ and its CSV export."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from sophie_chat.models import ChatErrorEvent, UnansweredQuestion
from tests.support.records import conversation

pytestmark = pytest.mark.django_db

DASHBOARD = "/chat/analytics/"
CSV = "/chat/analytics/export.csv"


@pytest.fixture
def staff(django_user_model):
    user = django_user_model.objects.create_user("ana", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_chatanalytics"))
    return user


@pytest.fixture
def filled():
    now = timezone.now()
    conversation(
        at=now,
        turns=[
            {
                "question": "Quanto custa uma faxina?",
                "total_ms": 1200,
                "prompt_tokens": 300,
                "completion_tokens": 80,
            },
            {
                "question": "Aceitam pix?",
                "answer": "Não sei dizer.",
                "rating": "down",
                "comment": "Errado",
            },
        ],
        satisfaction_score=4,
    )
    session = conversation(
        at=now - timedelta(days=2), turns=[{"question": "quanto custa uma faxina", "cached": True}]
    )
    ChatErrorEvent.objects.create(session=session, code="rate_limited")
    UnansweredQuestion.objects.create(
        key="tem estacionamento", question="Tem estacionamento?", reason="no_match"
    )
    return session


@pytest.mark.parametrize("url", [DASHBOARD, CSV])
def test_anonymous_visitor_is_sent_to_the_login_page(client, url):
    response = client.get(url)

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))
    assert "next=" in response["Location"]


@pytest.mark.parametrize("url", [DASHBOARD, CSV])
def test_logged_in_user_who_is_not_staff_gets_403(client, django_user_model, url):
    client.force_login(django_user_model.objects.create_user("joao"))

    assert client.get(url).status_code == 403


@pytest.mark.parametrize("url", [DASHBOARD, CSV])
def test_staff_without_the_analytics_permission_gets_403(client, django_user_model, url):
    client.force_login(django_user_model.objects.create_user("bia", is_staff=True))

    assert client.get(url).status_code == 403


def test_staff_with_the_permission_sees_the_dashboard(client, staff):
    client.force_login(staff)

    response = client.get(DASHBOARD)

    assert response.status_code == 200
    assert "admin/base_site.html" in [t.name for t in response.templates]


def test_superuser_sees_figures_of_real_conversations(admin_client, filled):
    body = admin_client.get(DASHBOARD).content.decode()

    kpis = dict(
        re.findall(r'sa-kpi-label">([^<]+)</div>\s*<div class="sa-kpi-value">([^<]+)<', body)
    )
    assert kpis["Conversations"] == "2"
    assert kpis["Answers"] == "3"
    assert kpis["Unanswered questions"] == "1"
    assert "Tem estacionamento?" in body
    assert "rate_limited" in body


def test_top_questions_and_worst_rated_answer_link_to_the_conversation(admin_client, filled):
    body = admin_client.get(DASHBOARD).content.decode()

    assert re.search(r"Quanto custa uma faxina\?</td><td class=\"sa-num\">2<", body)
    assert "Não sei dizer." in body
    assert "Errado" in body
    first = filled.__class__.objects.exclude(pk=filled.pk).get()
    assert reverse("admin:sophie_chat_chatsession_change", args=[first.pk]) in body


def test_charts_are_inline_svg_with_titles(admin_client, filled):
    body = admin_client.get(DASHBOARD).content.decode()

    assert body.count('<svg class="sc-chart"') == 4
    assert "<title>" in body


def test_the_page_needs_no_inline_script_style_or_third_party_resource(admin_client, filled):
    body = admin_client.get(DASHBOARD).content.decode()

    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", body)
    assert " style=" not in body
    assert "<style" not in body
    assert not re.search(r'(?:src|href)="(?:https?:)?//', body)


def test_period_is_chosen_in_the_query_string(admin_client, filled):
    today = timezone.localdate()

    response = admin_client.get(DASHBOARD, {"start": today.isoformat(), "end": today.isoformat()})

    summary = response.context["summary"]
    assert (summary.start, summary.end, summary.totals.conversations) == (today, today, 1)


def test_preset_days_choose_the_last_days(admin_client):
    response = admin_client.get(DASHBOARD, {"days": 7})

    summary = response.context["summary"]
    assert len(summary.days) == 7
    assert summary.end == timezone.localdate()


def test_period_ending_before_it_starts_is_refused_with_a_message(admin_client):
    response = admin_client.get(DASHBOARD, {"start": "2026-03-10", "end": "2026-03-01"})

    assert response.status_code == 200
    assert "The period must start before it ends." in response.content.decode()
    assert len(response.context["summary"].days) == 30


def test_csv_export_has_a_row_per_day_and_a_total(admin_client, filled):
    today = timezone.localdate()
    start = today - timedelta(days=2)

    response = admin_client.get(CSV, {"start": start.isoformat(), "end": today.isoformat()})

    assert response["Content-Type"].startswith("text/csv")
    assert "attachment;" in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [r["day"] for r in rows] == [
        start.isoformat(),
        (start + timedelta(days=1)).isoformat(),
        today.isoformat(),
        "total",
    ]
    assert rows[-1]["answers"] == "3"
    assert rows[-1]["cache_hits"] == "1"
    assert rows[-1]["rate_limited"] == "1"
    assert rows[0]["conversations"] == "1"


def test_dashboard_page_is_in_brazilian_portuguese_for_a_portuguese_browser(admin_client):
    body = admin_client.get(DASHBOARD, HTTP_ACCEPT_LANGUAGE="pt-br").content.decode()

    assert 'lang="pt-br"' in body
    assert "Início" in body  # the admin's own breadcrumb, translated


def test_dashboard_headings_are_translated_to_brazilian_portuguese(admin_client):
    # New strings: passes once the translation pass has compiled them.
    body = admin_client.get(DASHBOARD, HTTP_ACCEPT_LANGUAGE="pt-br").content.decode()

    assert "Análise do chat" in body
    assert "Conversas por dia" in body


def test_admin_analytics_list_links_to_the_dashboard(admin_client):
    body = admin_client.get(reverse("admin:sophie_chat_chatanalytics_changelist")).content.decode()

    assert f'href="{DASHBOARD}"' in body
