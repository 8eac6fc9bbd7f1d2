"""The issue's "done when", from outside: a site with one login tool and one confirmed
tool, served by a real ASGI server process; the real ``openai`` SDK talks to the fake
OpenAI server, scripted to call tools for the wrong visitor and without confirmation.

The tools are ``tests.support.tools.my_profile`` (login required) and
``rename_me`` (login required, confirmed), as a site would list them.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.chat_servers import ChatServer, ServerSpec, start_chat_servers, stop_chat_servers
from tests.support.logins import create_logins
from tests.support.openai_server import API_KEY, FakeOpenAIProcess
from tests.support.processes import prepare_database, project_env
from tests.support.websocket import ChatClient, open_chat_client

pytestmark = pytest.mark.server

KNOWLEDGE_FILE = Path(__file__).resolve().parents[1] / "e2e" / "knowledge.json"
TOOLS = "tests.support.tools.my_profile,tests.support.tools.rename_me"


@pytest.fixture(scope="module")
def site(
    tmp_path_factory: pytest.TempPathFactory, fake_openai_process: FakeOpenAIProcess
) -> Iterator[tuple[ChatServer, Path, dict[str, str]]]:
    """The server, its database file, and the logged-in visitors' cookies (ana, bruno)."""
    work = tmp_path_factory.mktemp("tools-site")
    database = work / "site.sqlite3"
    env = project_env(
        DJANGO_SETTINGS_MODULE="tests.e2e.settings",
        SOPHIE_E2E_DATABASE=str(database),
        SOPHIE_E2E_OPENAI_BASE_URL=fake_openai_process.url,
        SOPHIE_E2E_OPENAI_API_KEY=API_KEY,
        SOPHIE_E2E_TOOLS=TOOLS,
    )
    prepare_database(env, KNOWLEDGE_FILE)
    cookies = create_logins(env, "ana", "bruno")
    servers = start_chat_servers({"tools": ServerSpec("uvicorn", env)}, work)
    yield servers["tools"], database, cookies
    stop_chat_servers(list(servers.values()))


@pytest.fixture
async def visit(site):
    """``client = await visit(cookie)``: a tab (logged in with ``cookie``, or anonymous)
    that has started a conversation; closed after the test."""
    server, _database, _cookies = site
    opened: list[ChatClient] = []

    async def _visit(cookie: str | None = None, **start: Any) -> ChatClient:
        headers = {"Cookie": cookie} if cookie else None
        client = await open_chat_client(server.ws_url, origin=server.http_url, headers=headers)
        opened.append(client)
        welcome = await client.receive()
        assert welcome["features"]["tools"] is True
        assert (await client.start(**start))["type"] == "session"
        return client

    yield _visit
    for client in opened:
        await client.close()


def first_name(database: Path, username: str) -> str:
    with sqlite3.connect(database) as connection:
        row = connection.execute(
            "SELECT first_name FROM auth_user WHERE username = ?", (username,)
        ).fetchone()
    return row[0]


def tool_runs(database: Path, name: str) -> int:
    with sqlite3.connect(database) as connection:
        return connection.execute(
            "SELECT COUNT(*) FROM sophie_chat_toolcall WHERE name = ? AND status = 'ok'", (name,)
        ).fetchone()[0]


def offered(request: dict[str, Any]) -> list[str]:
    return [tool["function"]["name"] for tool in request["body"].get("tools", [])]


def tool_results(request: dict[str, Any]) -> list[str]:
    return [m["content"] for m in request["body"]["messages"] if m["role"] == "tool"]


async def test_an_anonymous_visitor_is_offered_nothing_and_refused_anyway(visit, fake_openai):
    fake_openai.call_tools(("my_profile", {}), ("rename_me", {"first_name": "Mallory"}))
    fake_openai.queue(text="I can't do that for you.")
    client = await visit()
    frames = await client.ask("Who am I? Rename me to Mallory.")
    assert frames[-1]["type"] == "stream_end"
    first, second = fake_openai.chat_requests()
    assert offered(first) == []
    assert [f["status"] for f in frames if f["type"] == "tool_end"] == ["refused", "refused"]
    assert not [f for f in frames if f["type"] == "confirm_request"]
    assert all("may not use this tool" in result for result in tool_results(second))


async def test_the_login_tool_answers_the_logged_in_owner_only(visit, site, fake_openai):
    _server, _database, cookies = site
    fake_openai.call_tools(("my_profile", {}))
    fake_openai.queue(text="You are ana.")
    client = await visit(cookies["ana"])
    frames = await client.ask("Who am I?")
    assert [f["type"] for f in frames if f["type"].startswith("tool_")] == [
        "tool_start",
        "tool_end",
    ]
    first, second = fake_openai.chat_requests()
    assert offered(first) == ["my_profile", "rename_me"]
    [result] = tool_results(second)
    assert '"username": "ana"' in result
    assert "bruno" not in result
    assert frames[-1]["message"]["metadata"]["tools"] == [{"name": "my_profile", "status": "ok"}]


async def test_the_confirmed_tool_changes_data_only_after_the_owners_confirm_once(
    visit, site, fake_openai
):
    _server, database, cookies = site
    fake_openai.call_tools(("rename_me", {"first_name": "Anna"}))
    fake_openai.queue(text="Your name is now Anna.")
    ana = await visit(cookies["ana"])
    await ana.send({"type": "message", "content": "Call me Anna, I confirm in advance."})
    request = (await ana.receive_until("confirm_request"))[-1]
    assert request["summary"] == "Change your first name to Anna"
    assert first_name(database, "ana") == "ana"

    # Another visitor, logged in or not, cannot answer it.
    answer = {"type": "confirm", "confirmation_id": request["confirmation_id"], "accept": True}
    for intruder in (await visit(cookies["bruno"]), await visit()):
        await intruder.send(answer)
        assert (await intruder.receive())["code"] == "confirmation_not_found"
    assert first_name(database, "ana") == "ana"

    await ana.send(answer)
    frames = await ana.receive_until("stream_end")
    assert frames[0]["outcome"] == "accepted"
    assert frames[-1]["message"]["content"] == "Your name is now Anna."
    assert first_name(database, "ana") == "Anna"
    assert first_name(database, "bruno") == "bruno"

    # Answering again runs nothing again.
    await ana.send(answer)
    assert (await ana.receive())["code"] == "confirmation_not_found"
    assert tool_runs(database, "rename_me") == 1
    [result] = tool_results(fake_openai.chat_requests()[-1])
    assert json.loads(result.split("\n")[3]) == {"first_name": "Anna"}
