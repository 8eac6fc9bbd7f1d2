"""The inbox page at chat/inbox/: who may open it, and what it is made of."""

from __future__ import annotations

import json
import re

import pytest
from django.contrib.auth.models import Permission

pytestmark = pytest.mark.django_db

INBOX = "/chat/inbox/"


def permission():
    return Permission.objects.get(codename="handle_conversation")


@pytest.fixture
def agent(django_user_model):
    user = django_user_model.objects.create_user("bia", password="pw", first_name="Bia")
    user.user_permissions.add(permission())
    return user


def test_anonymous_visitors_are_sent_to_the_login_page(client):
    response = client.get(INBOX)
    assert response.status_code == 302
    assert response["Location"] == "/admin/login/?next=/chat/inbox/"


def test_anonymous_visitors_go_to_the_sites_own_login_page_when_it_has_one(client, settings):
    settings.LOGIN_URL = "/login/"
    response = client.get(INBOX)
    assert response["Location"] == "/login/?next=/chat/inbox/"


def test_a_user_without_the_permission_is_refused(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("joao", password="pw"))
    assert client.get(INBOX).status_code == 403


def test_staff_without_the_permission_is_refused(client, django_user_model):
    staff = django_user_model.objects.create_user("rui", password="pw", is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_chatanalytics"))
    client.force_login(staff)
    assert client.get(INBOX).status_code == 403


def test_an_agent_gets_the_page(client, agent):
    client.force_login(agent)
    response = client.get(INBOX)
    assert response.status_code == 200
    assert response["Cache-Control"].startswith("max-age=0")
    html = response.content.decode()
    assert 'data-ws-path="/ws/chat/inbox/"' in html
    assert "sophie_chat/inbox.js" in html
    assert "sophie_chat/inbox.css" in html


def test_an_agent_through_a_group_gets_the_page(client, django_user_model):
    from django.contrib.auth.models import Group

    group = Group.objects.create(name="support")
    group.permissions.add(permission())
    user = django_user_model.objects.create_user("caio", password="pw")
    user.groups.add(group)
    client.force_login(user)
    assert client.get(INBOX).status_code == 200


def test_an_inactive_agent_is_refused(client, agent):
    client.force_login(agent)
    agent.is_active = False
    agent.save()
    assert client.get(INBOX).status_code in (302, 403)


def test_the_page_has_no_inline_script_nor_style(client, agent):
    client.force_login(agent)
    html = client.get(INBOX).content.decode()
    # Only JSON data blocks (never executed) and external scripts.
    for attributes, body in re.findall(r"<script([^>]*)>(.*?)</script>", html, re.S):
        assert "src=" in attributes or 'type="application/json"' in attributes, attributes
        if "src=" in attributes:
            assert not body.strip()
    assert " style=" not in html
    assert "<style" not in html
    assert not re.search(r"<[^>]+\son[a-z]+=", html)


def test_the_page_speaks_portuguese(client, agent):
    client.force_login(agent)
    response = client.get(INBOX, HTTP_ACCEPT_LANGUAGE="pt-br")
    html = response.content.decode()
    assert "Aguardando" in html
    strings = json.loads(
        re.search(
            r'<script id="sophie-inbox-strings" type="application/json">(.*?)</script>', html, re.S
        )[1]
    )
    assert strings["claim"] == "Assumir"
    assert strings["notes_hint"].startswith("Só os atendentes")


def test_only_get_is_allowed(client, agent):
    client.force_login(agent)
    assert client.post(INBOX).status_code == 405


def test_the_page_says_when_handoff_is_off(client, agent):
    from tests.support.handoff import handoff_settings
    from tests.support.overrides import settings_with

    client.force_login(agent)
    assert "Handoff is turned off" in client.get(INBOX).content.decode()
    portuguese = client.get(INBOX, HTTP_ACCEPT_LANGUAGE="pt-br").content.decode()
    assert "O atendimento humano está desligado" in portuguese
    with settings_with(HANDOFF=handoff_settings()):
        assert "Handoff is turned off" not in client.get(INBOX).content.decode()
