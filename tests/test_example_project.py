"""The Casa Pronta demo (example_project/) sets up as ``make demo`` says, on every Django.

Each step runs the demo's own ``manage.py`` in a subprocess, with the demo's
settings on a temporary SQLite file (tests/browser/settings.py); the browser
tests (tests/browser/) then use the site for real.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.demo import DEMO, KNOWLEDGE, demo_env, make_template_database, manage

pytestmark = pytest.mark.server

#: What the knowledge base must answer, in both languages (issue 3).
TOPICS = {
    "services",
    "booking",
    "rescheduling",
    "cancellation",
    "payments",
    "refunds",
    "providers",
    "coverage",
    "guarantees",
    "privacy",
}

# Run inside the demo (manage.py shell): fetch pages, log the demo accounts in.
PROBE = """
import json
from django.contrib.auth import authenticate
from django.test import Client
from demo.accounts import DEMO_ACCOUNTS, DEMO_PASSWORD
from sophie_chat.models import KnowledgeBaseEntry

client = Client(HTTP_HOST="127.0.0.1")  # the demo's ALLOWED_HOSTS
paths = ["/", "/services/", "/services/cleaning/", "/help/", "/login/", "/account/"]
paths += sorted(set(KnowledgeBaseEntry.objects.values_list("url", flat=True)))
pages = {}
for path in paths:
    response = client.get(path)
    pages[path] = {
        "status": response.status_code,
        "widget": b"<sophie-chat " in response.content,
        "location": response.get("Location", ""),
    }
logins = {a.username: authenticate(username=a.username, password=DEMO_PASSWORD) is not None
          for a in DEMO_ACCOUNTS}
from demo.accounts import user_type
from django.contrib.auth.models import User
types = {a.username: user_type(User.objects.get(username=a.username)) for a in DEMO_ACCOUNTS}
agents = {
    a.username: User.objects.get(username=a.username).has_perm("sophie_chat.handle_conversation")
    for a in DEMO_ACCOUNTS
}
print(json.dumps({"pages": pages, "logins": logins, "types": types, "agents": agents}))
"""


@pytest.fixture(scope="module")
def demo_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_template_database(tmp_path_factory.mktemp("demo"))


@pytest.fixture(scope="module")
def probe(demo_database: Path) -> dict:
    out = manage(demo_env(demo_database), "shell", "--no-imports", "-c", PROBE)
    return json.loads(out.strip().splitlines()[-1])


def test_demo_passes_the_system_checks(demo_database):
    out = manage(demo_env(demo_database), "check")
    assert "System check identified no issues" in out


def test_migrate_creates_the_demo_accounts_with_the_password_on_the_login_page(probe):
    assert probe["logins"] == {"ana": True, "carlos": True, "bia": True}
    assert probe["types"] == {"ana": "client", "carlos": "provider", "bia": "client"}


def test_the_demo_support_agent_may_use_the_inbox_and_no_one_else(probe):
    assert probe["agents"] == {"ana": False, "carlos": False, "bia": True}


def test_every_page_renders_with_the_widget(probe):
    pages = probe["pages"]
    for path in ("/", "/services/", "/services/cleaning/", "/help/", "/login/"):
        assert pages[path] == {"status": 200, "widget": True, "location": ""}, path


def test_account_page_asks_visitors_to_log_in(probe):
    assert probe["pages"]["/account/"]["status"] == 302
    assert probe["pages"]["/account/"]["location"].startswith("/login/")


def test_every_knowledge_source_links_to_a_demo_page(probe):
    urls = {entry["url"] for entry in json.loads(KNOWLEDGE.read_text(encoding="utf-8"))}
    for url in urls:
        assert probe["pages"][url]["status"] == 200, url


def test_knowledge_covers_every_topic_in_both_languages():
    entries = json.loads(KNOWLEDGE.read_text(encoding="utf-8"))
    for locale in ("en", "pt-br"):
        categories = {entry["category"] for entry in entries if entry["locale"] == locale}
        assert categories == TOPICS, locale
    prices = [e for e in entries if "R$" in e["answer"]]
    assert {e["locale"] for e in prices} == {"en", "pt-br"}


def test_make_demo_runs_the_steps_this_module_runs():
    makefile = (DEMO.parent / "Makefile").read_text()
    assert "manage.py migrate --noinput" in makefile
    assert "manage.py populate_knowledge_base knowledge/home_services.json" in makefile
    assert "manage.py runserver $(DEMO_ADDRESS)" in makefile


SWITCHES = """
import json
from django.conf import settings
print(json.dumps({
    "llm": settings.SOPHIE_CHAT["LLM"]["BACKEND"],
    "options": settings.SOPHIE_CHAT["LLM"].get("OPTIONS", {}),
    "layer": settings.CHANNEL_LAYERS["default"]["BACKEND"],
    "cache": settings.CACHES["default"]["BACKEND"],
}))
"""


def demo_settings(database: Path, **env: str) -> dict:
    out = manage({**demo_env(database), **env}, "shell", "--no-imports", "-c", SWITCHES)
    return json.loads(out.strip().splitlines()[-1])


def test_demo_runs_offline_and_in_memory_by_default(demo_database):
    switches = demo_settings(demo_database)
    assert switches["llm"] == "sophie_chat.llm.offline.OfflineBackend"
    assert switches["layer"] == "channels.layers.InMemoryChannelLayer"
    assert switches["cache"] == "django.core.cache.backends.locmem.LocMemCache"


def test_openai_api_key_switches_the_demo_to_openai(demo_database):
    switches = demo_settings(demo_database, OPENAI_API_KEY="sk-demo", OPENAI_MODEL="gpt-4o")
    assert switches["llm"] == "sophie_chat.llm.openai.OpenAIBackend"
    assert switches["options"]["model"] == "gpt-4o"
    assert switches["options"]["api_key"] == "sk-demo"


def test_redis_url_switches_the_demo_to_redis(demo_database):
    # Only the settings are read: no Redis server is needed here.
    switches = demo_settings(demo_database, REDIS_URL="redis://127.0.0.1:6379/9")
    assert switches["layer"] == "channels_redis.core.RedisChannelLayer"
    assert switches["cache"] == "django_redis.cache.RedisCache"
