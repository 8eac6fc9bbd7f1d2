"""The Casa Pronta demo: its pages, its languages and its two demo accounts."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser

PAGES = [
    "/",
    "/services/",
    "/services/electrical/",
    "/help/",
    "/help/payments/",
    "/guarantee/",
    "/login/",
]


@pytest.mark.parametrize("path", PAGES)
def test_every_page_has_the_widget(demo, open_tab, path):
    tab = open_tab(demo.url + path)

    assert tab.launcher.is_visible()
    assert tab.console_errors == []


def test_ask_sophie_button_opens_the_chat(demo, open_tab):
    from playwright.sync_api import expect

    tab = open_tab(f"{demo.url}/services/cleaning/")

    tab.page.get_by_role("button", name="Ask Sophie").click()

    assert tab.panel.is_visible()
    expect(tab.input).to_be_focused()


def test_sources_lead_to_the_help_page_that_says_the_same(demo, open_tab):
    tab = open_tab(demo.url).open()
    tab.ask("How do I cancel a booking?")
    answer = tab.wait_answers(1)

    answer.locator(".msg__sources a").first.click()

    tab.page.wait_for_url(f"{demo.url}/help/cancellation/")
    assert "How do I cancel a booking?" in tab.page.locator("main").inner_text()


def test_portuguese_visitor_gets_the_widget_and_answers_in_portuguese(demo, open_tab):
    tab = open_tab(demo.url, locale="pt-BR")

    assert tab.page.locator("html").get_attribute("lang") == "pt-br"
    assert tab.launcher.get_attribute("aria-label") == "Converse com a Sophie"
    tab.open()
    assert tab.widget(".send").get_attribute("aria-label") == "Enviar"
    assert tab.input.get_attribute("placeholder") == "Digite sua mensagem…"
    tab.wait_online()
    assert tab.status.inner_text() == "Online"
    assert "Como posso ajudar" in tab.widget(".msg--greeting").inner_text()
    tab.ask("Quais formas de pagamento vocês aceitam?")
    answer = tab.wait_answers(1)
    assert "Cartão de crédito" in answer.inner_text()
    assert answer.locator(".msg__sources-title").inner_text() == "Fontes"


def test_language_switch_changes_the_widget_language(demo, open_tab):
    tab = open_tab(demo.url)
    assert tab.launcher.get_attribute("aria-label") == "Chat with Sophie"

    tab.page.get_by_role("button", name="PT").click()

    tab.page.wait_for_load_state()
    tab.launcher.wait_for()
    assert tab.launcher.get_attribute("aria-label") == "Converse com a Sophie"


def test_demo_client_logs_in_with_one_click_and_chats_as_a_client(demo, open_tab):
    tab = open_tab(f"{demo.url}/login/")
    assert "casapronta" in tab.page.locator("main").inner_text()

    tab.page.get_by_role("button", name="Log in as Ana").click()

    tab.page.wait_for_url(f"{demo.url}/account/")
    assert "My bookings" in tab.page.locator("main").inner_text()
    tab.open().ask("How do I reschedule a booking?")
    answer = tab.wait_answers(1)
    assert _user_type_of(demo, answer) == "client"


def test_demo_provider_logs_in_and_chats_as_a_provider(demo, open_tab):
    tab = open_tab(f"{demo.url}/login/")

    tab.page.get_by_role("button", name="Log in as Carlos").click()

    tab.page.wait_for_url(f"{demo.url}/account/")
    assert "My jobs" in tab.page.locator("main").inner_text()
    tab.open().ask("When are providers paid?")
    answer = tab.wait_answers(1)
    assert _user_type_of(demo, answer) == "provider"


def test_conversation_started_as_a_visitor_continues_after_logging_in(demo, open_tab):
    tab = open_tab(demo.url).open()
    tab.ask("Which cities do you cover?")
    first = tab.wait_answers(1)
    session = demo.session_of(first.get_attribute("data-id"))
    tab.page.goto(f"{demo.url}/login/")

    tab.page.get_by_role("button", name="Log in as Ana").click()

    tab.page.wait_for_url(f"{demo.url}/account/")
    tab.open()
    tab.widget(".msg--user").first.wait_for()
    assert tab.texts(tab.user_messages()) == ["Which cities do you cover?"]
    tab.ask("And how do I pay?")
    assert demo.session_of(tab.wait_answers(2).get_attribute("data-id")) == session


def test_logging_out_forgets_the_conversation_in_this_browser(demo, open_tab):
    tab = open_tab(f"{demo.url}/login/")
    tab.page.get_by_role("button", name="Log in as Ana").click()
    tab.page.wait_for_url(f"{demo.url}/account/")
    tab.open().ask("Is my personal data safe?")
    tab.wait_answers(1)

    tab.page.get_by_role("button", name="Log out").click()

    tab.page.wait_for_url(f"{demo.url}/")
    tab.open().wait_online()
    assert tab.user_messages().count() == 0
    assert tab.widget(".notice").count() == 0


def _user_type_of(server, answer) -> str:
    ((user_type,),) = server.query(
        "SELECT user_type FROM sophie_chat_chatsession WHERE id = ?",
        server.session_of(answer.get_attribute("data-id")),
    )
    return user_type
