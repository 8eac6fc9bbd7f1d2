"""The health endpoint."""

import pytest
from django.contrib.auth import get_user_model

DETAILS = {"version", "protocol", "database", "connections", "llm"}


@pytest.fixture
def openai_with_a_secret(settings):
    settings.SOPHIE_CHAT = {
        "LLM": {
            "BACKEND": "sophie_chat.llm.openai.OpenAIBackend",
            "OPTIONS": {"api_key": "sk-very-secret"},
        }
    }


@pytest.mark.django_db
def test_health_tells_anyone_only_ok(client, openai_with_a_secret):
    response = client.get("/chat/health/")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response["Cache-Control"].startswith("max-age=0")


@pytest.mark.django_db
def test_health_tells_a_logged_in_user_who_is_not_staff_only_ok(client, openai_with_a_secret):
    client.force_login(get_user_model().objects.create_user("maria"))
    assert client.get("/chat/health/").json() == {"status": "ok"}


@pytest.mark.django_db
def test_health_shows_staff_the_details_without_secrets(client, openai_with_a_secret):
    client.force_login(get_user_model().objects.create_user("ana", is_staff=True))
    response = client.get("/chat/health/")
    data = response.json()
    assert set(data) == {"status", *DETAILS}
    assert data["status"] == "ok"
    assert data["protocol"] == 1
    assert data["connections"] == 0
    assert data["llm"]["backend"] == "sophie_chat.llm.openai.OpenAIBackend"
    assert "sk-very-secret" not in response.content.decode()


@pytest.mark.django_db
def test_health_details_setting_shows_everyone_the_details(client, settings):
    settings.SOPHIE_CHAT = {"HEALTH_DETAILS": True}
    assert set(client.get("/chat/health/").json()) == {"status", *DETAILS}


@pytest.mark.django_db
def test_health_says_unavailable_with_503_when_the_database_does_not_answer(
    client, monkeypatch
):
    from django.db import connection

    def broken_cursor(*args, **kwargs):
        raise RuntimeError("the database is down")

    monkeypatch.setattr(connection, "cursor", broken_cursor)
    response = client.get("/chat/health/")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable"}


def test_health_refuses_post(client):
    assert client.post("/chat/health/").status_code == 405
