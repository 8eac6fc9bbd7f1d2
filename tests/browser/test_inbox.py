"""Two browsers, a visitor and a support agent, through a whole handoff in the demo.

The visitor uses the widget on the demo's pages; the agent, Bia (the demo's
support account), logs in through the demo's login page and works in the
inbox at chat/inbox/. Both are real Chromium pages against real server
processes: the shared demo (one process), and two demo processes on one
database and a Redis channel layer (the visitor on one, the agent on the
other).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.browser import TIMEOUT_MS, Tab
from tests.support.demo import DEMO, DemoServer, demo_env, manage
from tests.support.logins import create_logins

pytestmark = pytest.mark.browser

ASK_FOR_A_PERSON = "quero falar com um atendente"


class Inbox:
    """An agent's inbox page."""

    def __init__(self, page: Any) -> None:
        self.page = page

    def __getattr__(self, selector: str) -> Any:
        raise AttributeError(selector)

    def at(self, selector: str) -> Any:
        return self.page.locator(selector)

    def wait_online(self) -> Inbox:
        self.at('.si-status[data-state="online"]').wait_for(timeout=TIMEOUT_MS)
        return self

    def item(self, section: str, text: str) -> Any:
        """The list entry of ``section`` (waiting, active, recent) whose text has ``text``."""
        return self.at(f'.si-items[data-section="{section}"] .si-open').filter(has_text=text)

    def open(self, section: str, text: str) -> Inbox:
        self.item(section, text).click()
        self.at(".si-conversation").wait_for(state="visible")
        return self

    def transcript(self) -> list[str]:
        return [t.strip() for t in self.at(".si-transcript .si-msg-text").all_inner_texts()]

    def wait_transcript(self, text: str) -> None:
        self.at(".si-transcript .si-msg-text").filter(has_text=text).first.wait_for()

    def reply(self, text: str) -> None:
        self.at(".si-reply-text").fill(text)
        self.at(".si-reply-text").press("Enter")


def log_in_to_inbox(page: Any, server_url: str, username: str = "bia") -> Inbox:
    """The inbox sends an anonymous visitor to the demo's login page, and back after it."""
    page.goto(f"{server_url}/chat/inbox/")
    page.wait_for_url(re.compile(r"/login/\?next=/chat/inbox/"))
    page.locator(f'[data-login="{username}"]').click()
    page.wait_for_url(re.compile(r"/chat/inbox/$"))
    return Inbox(page).wait_online()


def inbox_with_cookie(context: Any, server_url: str, cookie: str) -> Inbox:
    name, value = cookie.split("=", 1)
    context.add_cookies([{"name": name, "value": value, "url": server_url}])
    page = context.new_page()
    page.goto(f"{server_url}/chat/inbox/")
    return Inbox(page).wait_online()


def back_to_sophie(tab: Any) -> None:
    """After the agent ends it, the visitor is asked to rate the person: "Not now"."""
    skip = tab.widget(".rating__skip")
    skip.wait_for()
    skip.click()
    tab.input.wait_for(state="visible")


def no_new_answer(tab: Any, count: int, wait_ms: int = 1500) -> bool:
    tab.page.wait_for_timeout(wait_ms)
    return tab.answers().count() == count


def add_canned_replies(server: DemoServer) -> None:
    manage(
        server.env,
        "shell",
        "-c",
        "from sophie_chat.models import CannedReply as C; "
        "C.objects.get_or_create(title='Saudação', text='Olá! Como posso ajudar?', "
        "language='pt-br'); "
        "C.objects.get_or_create(title='Greeting', text='Hi! How can I help?', language='en')",
    )


def test_a_visitor_and_an_agent_through_the_whole_handoff(demo, open_tab, browser_context):
    add_canned_replies(demo)
    agent_context = browser_context()
    # Under the demo's strict Content-Security-Policy: nothing refused, nothing thrown.
    agent_page = Tab(agent_context.new_page()).watch_console()
    inbox = log_in_to_inbox(agent_page.page, demo.url)
    assert not inbox.page.title().startswith("(")

    visitor = open_tab(demo.url).open().wait_online()
    visitor.ask(ASK_FOR_A_PERSON)
    visitor.wait_answers(1)

    # The agent sees it arrive, waiting, with the title counting it.
    entry = inbox.item("waiting", ASK_FOR_A_PERSON)
    entry.wait_for()
    assert re.search(r"waiting for \d+ s", entry.inner_text())
    inbox.page.wait_for_function("document.title.startsWith('(')")
    inbox.open("waiting", ASK_FOR_A_PERSON)
    inbox.wait_transcript(ASK_FOR_A_PERSON)
    assert inbox.transcript()[0] == ASK_FOR_A_PERSON
    assert len(inbox.transcript()) == 2  # Sophie's answer saying a person is coming
    assert "Anonymous visitor" in inbox.at(".si-who").inner_text()
    assert inbox.at(".si-context").inner_text()  # the page the visitor is on, at least

    inbox.at(".si-claim").click()
    inbox.item("active", ASK_FOR_A_PERSON).wait_for()
    inbox.at(".si-end").wait_for()

    # Canned replies in the visitor's language first (an English page here).
    options = inbox.at(".si-canned option").all_inner_texts()
    assert options[1:] == ["Greeting (en)", "Saudação (pt-br)"]
    inbox.at(".si-canned").select_option(label="Greeting (en)")
    assert inbox.at(".si-reply-text").input_value() == "Hi! How can I help?"

    # Live both ways, and Sophie stays quiet.
    inbox.reply("Oi! Sou a Bia, da Casa Pronta.")
    agent_message = visitor.widget(".msg--agent .msg__text").filter(has_text="Sou a Bia")
    agent_message.wait_for()
    visitor.ask("Minha pia está vazando")
    inbox.wait_transcript("Minha pia está vazando")
    assert no_new_answer(visitor, 1)

    # A second tab of the visitor has the whole conversation, the agent's message included.
    second = open_tab(demo.url, context=visitor.page.context).open().wait_online()
    second.widget(".msg--agent .msg__text").filter(has_text="Sou a Bia").wait_for()

    # The agent's page reconnects into the same state.
    inbox.page.reload()
    inbox.wait_online()
    inbox.open("active", ASK_FOR_A_PERSON)
    inbox.wait_transcript("Minha pia está vazando")
    inbox.reply("Um encanador vai te ligar hoje.")
    visitor.widget(".msg--agent .msg__text").filter(has_text="encanador").wait_for()

    # Ending gives the conversation back to Sophie.
    inbox.at(".si-end").click()
    inbox.item("recent", ASK_FOR_A_PERSON).wait_for()
    back_to_sophie(visitor)
    visitor.ask("Quanto custa uma faxina?")
    visitor.wait_answers(2)

    assert visitor.console_errors == []
    assert agent_page.console_errors == []
    assert axe_violations_of_inbox(inbox.page) == []


def test_two_agents_claiming_one_gets_it_and_the_other_is_told(demo, open_tab, browser_context):
    (cookie,) = create_logins(
        demo.env, "caio", permissions=("handle_conversation",), cwd=DEMO
    ).values()
    bia = log_in_to_inbox(browser_context().new_page(), demo.url)
    caio = inbox_with_cookie(browser_context(), demo.url, cookie)

    visitor = open_tab(demo.url).open().wait_online()
    visitor.ask("Quero falar com uma pessoa, por favor")
    visitor.wait_answers(1)
    for inbox in (bia, caio):
        inbox.open("waiting", "falar com uma pessoa")

    bia.at(".si-claim").click()
    # Caio's click, whether or not his page has heard yet: the server says who won.
    caio.page.evaluate("document.querySelector('.si-claim').click()")
    caio.at(".si-error").filter(has_text="Bia Rocha took this conversation first.").wait_for()
    caio.item("active", "falar com uma pessoa").filter(has_text="Bia").wait_for()
    assert caio.at(".si-reply-text").is_disabled()
    assert bia.at(".si-reply-text").is_enabled()

    # Bia hands it to Caio, who can answer at once.
    caio_option = bia.at(".si-transfer-to option").filter(has_text="caio")
    bia.at(".si-transfer-to").select_option(caio_option.get_attribute("value"))
    bia.at(".si-transfer").click()
    caio.at(".si-end").wait_for()
    assert bia.at(".si-reply-text").is_disabled()
    caio.reply("Oi, aqui é o Caio.")
    visitor.widget(".msg--agent .msg__text").filter(has_text="aqui é o Caio").wait_for()


def test_the_inbox_page_is_keyboard_usable_accessible_and_in_portuguese(
    demo, open_tab, browser_context
):
    context = browser_context(locale="pt-BR")
    inbox = log_in_to_inbox(context.new_page(), demo.url)
    inbox.at(".si-sound-toggle").check()
    visitor = open_tab(demo.url).open().wait_online()
    visitor.ask("Preciso falar com um atendente")
    visitor.wait_answers(1)
    item = inbox.item("waiting", "Preciso falar com um atendente")
    item.wait_for()
    assert "aguardando há" in item.inner_text()
    # The new conversation was announced with the sound the page generates.
    assert inbox.at(".si").get_attribute("data-beeps") == "1"
    item.focus()
    inbox.page.keyboard.press("Enter")
    inbox.at(".si-conversation").wait_for(state="visible")
    # Focus moves to the conversation; Tab reaches Claim, Enter claims.
    inbox.page.keyboard.press("Tab")
    assert inbox.page.evaluate("document.activeElement.className").startswith("button si-claim")
    inbox.page.keyboard.press("Enter")
    inbox.at(".si-end").wait_for()
    assert inbox.at(".si-claim").is_hidden()
    assert inbox.at(".si-live").inner_text() in ("Você assumiu esta conversa.", "")
    assert axe_violations_of_inbox(inbox.page) == []


def axe_violations_of_inbox(page: Any) -> list[str]:
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page, context=".si")
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']]}"
        for v in results.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]


# -- two processes on Redis --------------------------------------------------------------


@pytest.fixture
def two_demo_processes(demo_template: Path, tmp_path: Path) -> Iterator[list[DemoServer]]:
    """Two demo processes on one database and a Redis channel layer and cache."""
    redis_url = os.environ.get("REDIS_URL")
    if not redis_url:
        pytest.skip("needs REDIS_URL")
    database = tmp_path / "shared.sqlite3"
    shutil.copyfile(demo_template, database)
    env = {**demo_env(database), "REDIS_URL": redis_url}
    servers = [DemoServer(name, database, env, tmp_path) for name in ("visitors", "staff")]
    try:
        for server in servers:
            server.start()
        yield servers
    finally:
        for server in servers:
            server.stop()


@pytest.mark.redis
def test_the_visitor_on_one_process_and_the_agent_on_another(
    two_demo_processes, open_tab, browser_context
):
    visitors, staff = two_demo_processes
    inbox = log_in_to_inbox(browser_context().new_page(), staff.url)
    visitor = open_tab(visitors.url).open().wait_online()
    visitor.ask("Quero falar com um atendente agora")
    visitor.wait_answers(1)
    inbox.open("waiting", "atendente agora")
    inbox.wait_transcript("atendente agora")
    inbox.at(".si-claim").click()
    inbox.at(".si-end").wait_for()
    inbox.reply("Olá! Aqui é a Bia, em outro servidor.")
    visitor.widget(".msg--agent .msg__text").filter(has_text="outro servidor").wait_for()
    visitor.ask("Obrigado, Bia")
    inbox.wait_transcript("Obrigado, Bia")
    assert no_new_answer(visitor, 1)
    inbox.at(".si-end").click()
    back_to_sophie(visitor)
    visitor.ask("Quanto custa uma faxina?")
    visitor.wait_answers(2)


# -- out of hours -------------------------------------------------------------------------


@pytest.fixture
def closed_demo(demo_template: Path, tmp_path: Path) -> Iterator[DemoServer]:
    """A demo of its own whose team is out of hours (tests/browser/settings.py)."""
    database = tmp_path / "closed.sqlite3"
    shutil.copyfile(demo_template, database)
    env = {**demo_env(database), "SOPHIE_BROWSER_HANDOFF_CLOSED": "1"}
    server = DemoServer("closed", database, env, tmp_path).start()
    yield server
    server.stop()


def test_out_of_hours_the_visitor_leaves_a_message_and_the_inbox_shows_it(
    closed_demo, open_tab, browser_context
):
    # Bia's account page leads to the inbox.
    page = browser_context().new_page()
    page.goto(f"{closed_demo.url}/login/")
    page.locator('[data-login="bia"]').click()
    page.locator("[data-inbox]").click()
    inbox = Inbox(page).wait_online()
    visitor = open_tab(closed_demo.url).open().wait_online()
    visitor.ask("I want to talk to a human")
    visitor.wait_answers(1)
    form = visitor.widget(".handoff__form")
    form.wait_for()
    form.locator('input[name="name"]').fill("Ana")
    form.locator('input[name="contact"]').fill("ana@example.com")
    form.locator('textarea[name="message"]').fill("My kitchen sink is leaking.")
    form.locator(".handoff__send").click()

    entry = inbox.item("recent", "talk to a human").filter(has_text="Left a message")
    entry.wait_for()
    entry.click()
    inbox.at(".si-leads").filter(has_text="My kitchen sink is leaking.").wait_for()
    assert "ana@example.com" in inbox.at(".si-leads").inner_text()
    assert inbox.at(".si-claim").is_hidden()


def test_after_a_server_restart_both_sides_reconnect_into_the_same_conversation(
    own_demo, open_tab, browser_context
):
    inbox = log_in_to_inbox(browser_context().new_page(), own_demo.url)
    visitor = open_tab(own_demo.url).open().wait_online()
    visitor.ask("Quero falar com um atendente, por favor")
    visitor.wait_answers(1)
    inbox.open("waiting", "atendente, por favor")
    inbox.at(".si-claim").click()
    inbox.at(".si-end").wait_for()

    own_demo.stop()
    inbox.at('.si-status[data-state="reconnecting"]').wait_for()
    own_demo.start()
    inbox.wait_online()
    visitor.wait_online()

    # The inbox reopened the conversation it showed; it is still this agent's.
    inbox.item("active", "atendente, por favor").wait_for()
    inbox.wait_transcript("atendente, por favor")
    inbox.reply("Voltei! Continuamos daqui.")
    visitor.widget(".msg--agent .msg__text").filter(has_text="Voltei!").wait_for()
    visitor.ask("Ótimo")
    inbox.wait_transcript("Ótimo")


# -- presence ------------------------------------------------------------------------------


@pytest.fixture
def quick_idle_demo(demo_template: Path, tmp_path: Path) -> Iterator[DemoServer]:
    """A demo of its own where an agent idle for 2 seconds is away."""
    database = tmp_path / "idle.sqlite3"
    shutil.copyfile(demo_template, database)
    env = {**demo_env(database), "SOPHIE_BROWSER_AGENT_IDLE": "2"}
    server = DemoServer("idle", database, env, tmp_path).start()
    yield server
    server.stop()


def test_an_agent_is_online_away_after_idling_and_offline_once_the_tab_closes(
    quick_idle_demo, browser_context
):
    (cookie,) = create_logins(
        quick_idle_demo.env, "caio", permissions=("handle_conversation",), cwd=DEMO
    ).values()
    bia = log_in_to_inbox(browser_context().new_page(), quick_idle_demo.url)
    caio = inbox_with_cookie(browser_context(), quick_idle_demo.url, cookie)
    row = bia.at(".si-agent-row").filter(has_text="caio")

    row.filter(has_text="Online").wait_for()
    row.filter(has_text="Away").wait_for()  # caio touched nothing for 2 seconds
    caio.page.keyboard.press("Tab")
    row.filter(has_text="Online").wait_for()
    caio.page.close()
    row.filter(has_text="Offline").wait_for()
