"""The health endpoint."""

import pytest


@pytest.mark.django_db
def test_health_reports_ok_without_secrets(client, settings):
    settings.SOPHIE_CHAT = {
        "LLM": {
            "BACKEND": "sophie_chat.llm.openai.OpenAIBackend",
            "OPTIONS": {"api_key": "sk-very-secret"},
        }
    }
    response = client.get("/chat/health/")
    assert response.status_code == 200
    data = response.json()
    assert data["status"] == "ok"
    assert data["protocol"] == 1
    assert data["llm"]["backend"] == "sophie_chat.llm.openai.OpenAIBackend"
    assert "sk-very-secret" not in response.content.decode()
    assert response["Cache-Control"].startswith("max-age=0")


def test_health_refuses_post(client):
    assert client.post("/chat/health/").status_code == 405
