"""Lead capture: the built-in capture_lead tool, its Lead records, checks, admin and data rights."""

from __future__ import annotations

import asyncio
import csv
import datetime
import io
import json

import pytest
from django.contrib.auth.models import AnonymousUser, User
from django.core import mail
from django.test import override_settings
from django.utils import formats, timezone, translation

from sophie_chat import backends, offers
from sophie_chat.checks import check_leads
from sophie_chat.data_rights import delete_user_data, export_user_data
from sophie_chat.models import ChatSession, Lead
from sophie_chat.retention import cleanup
from sophie_chat.signals import lead_captured
from sophie_chat.tools import ToolArgumentsInvalid, ToolContext, registry
from sophie_chat.tools.leads import capture_lead, offer_lead_capture
from tests.support.overrides import settings_with
from tests.support.turns import new_session, turn

pytestmark = pytest.mark.django_db(transaction=True)

TOMORROW = (timezone.localdate() + datetime.timedelta(days=1)).isoformat()
GOOD = {
    "service": "Paint two rooms",
    "neighbourhood": "Batel",
    "preferred_date": TOMORROW,
    "name": "Ana Souza",
    "phone": "+55 41 99999-1234",
}
WITH_TOOLS = {
    "LLM": {"BACKEND": "sophie_chat.llm.dummy.DummyBackend"},
    "TOOLS": ["sophie_chat.tools.leads.capture_lead"],
}


def context_for(session: ChatSession, user=None, locale: str = "en") -> ToolContext:
    user = user or AnonymousUser()
    return ToolContext(
        user=user, user_id=user.pk, session_id=str(session.pk), locale=locale, page={}
    )


def capture(session: ChatSession, arguments: dict, user=None) -> dict:
    validated = capture_lead.validate(json.dumps(arguments))
    return asyncio.run(capture_lead.run(validated, context_for(session, user)))


@pytest.fixture
def session() -> ChatSession:
    return ChatSession.objects.create()


def test_the_model_sees_only_the_configured_fields_and_which_are_required():
    with override_settings(
        SOPHIE_CHAT={"LEADS": {"FIELDS": ["service", "name", "email"], "REQUIRED": ["name"]}}
    ):
        parameters = capture_lead.definition().parameters

    assert list(parameters["properties"]) == ["service", "name", "email"]
    assert parameters["required"] == ["name"]
    assert "context" not in parameters["properties"]


def test_a_confirmed_call_stores_a_lead_for_the_conversation(session):
    result = capture(session, GOOD)

    lead = Lead.objects.get()
    assert result == {"saved": True, "reference": lead.pk}
    assert lead.session == session
    assert (lead.service, lead.neighbourhood, lead.name, lead.phone) == (
        "Paint two rooms",
        "Batel",
        "Ana Souza",
        "+55 41 99999-1234",
    )
    assert lead.preferred_date.isoformat() == TOMORROW
    assert lead.user is None


def test_a_logged_in_visitors_lead_belongs_to_them(session):
    user = User.objects.create_user("ana")

    capture(session, GOOD, user=user)

    assert Lead.objects.get().user == user


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        ({"phone": "call me"}, "phone: not a phone number"),
        ({"phone": "123"}, "phone: not a phone number"),
        ({"phone": None, "email": "ana@"}, "email: not a valid e-mail address"),
        ({"phone": None}, "missing: phone or email"),
        ({"name": "  "}, "missing: name"),
        ({"preferred_date": "2001-01-01"}, "preferred_date: in the past"),
        ({"preferred_date": "next friday"}, "preferred_date"),
        ({"service": "x" * 201}, "service: at most 200 characters"),
    ],
)
def test_bad_or_missing_details_go_back_to_the_model(change, complaint):
    arguments = {key: value for key, value in {**GOOD, **change}.items() if value is not None}

    with pytest.raises(ToolArgumentsInvalid) as raised:
        capture_lead.validate(json.dumps(arguments))

    assert complaint in str(raised.value)


def test_an_email_is_enough_to_reach_the_visitor():
    arguments = {**GOOD, "email": "ana@example.com"}
    del arguments["phone"]

    assert capture_lead.validate(arguments)["email"] == "ana@example.com"


def test_the_summary_lists_what_the_visitor_confirms_in_their_language():
    validated = capture_lead.validate(GOOD)
    with translation.override("pt-br"):
        summary = capture_lead.summary_text(validated)

    lines = summary.splitlines()
    assert lines[0] == "Enviar estes dados à nossa equipe para que entrem em contato:"
    assert "Serviço: Paint two rooms" in lines
    with translation.override("pt-br"):
        shown = formats.date_format(validated["preferred_date"])  # "18 de Dezembro de 2026"
    assert f"Data preferida: {shown}" in lines
    assert TOMORROW not in summary
    assert "Telefone: +55 41 99999-1234" in lines


def test_capture_lead_needs_confirmation_and_redacts_contact_details():
    assert capture_lead.confirm is True
    assert capture_lead.redacted({"name": "Ana", "service": "Paint"}) == {
        "name": "[redacted]",
        "service": "Paint",
    }


def test_the_lead_captured_signal_carries_the_lead(session):
    received = []

    def receiver(**kwargs):
        received.append(kwargs)

    lead_captured.connect(receiver)
    try:
        capture(session, GOOD)
    finally:
        lead_captured.disconnect(receiver)

    assert [kwargs["lead"] for kwargs in received] == [Lead.objects.get()]
    assert received[0]["context"].session_id == str(session.pk)


@override_settings(SOPHIE_CHAT={"LEADS": {"NOTIFY": ["sales@example.com"]}})
def test_staff_are_emailed_when_notify_is_set(session):
    capture(session, GOOD)

    (message,) = mail.outbox
    assert message.to == ["sales@example.com"]
    assert message.subject == "New lead from the chat: Paint two rooms"
    assert "Phone: +55 41 99999-1234" in message.body


def test_no_email_without_notify(session):
    capture(session, GOOD)

    assert mail.outbox == []


def test_leads_are_in_the_data_rights_export_and_deleted_with_the_conversations():
    user = User.objects.create_user("ana")
    session = ChatSession.objects.create(user=user)
    capture(session, GOOD, user=user)

    (conversation,) = export_user_data(user)["conversations"]
    (lead,) = conversation["leads"]
    assert lead["phone"] == "+55 41 99999-1234"
    assert lead["preferred_date"] == TOMORROW

    delete_user_data(user)
    assert not Lead.objects.exists()


def test_retention_deletes_the_leads_of_the_conversations_it_deletes(session):
    capture(session, GOOD)
    ChatSession.objects.filter(pk=session.pk).update(
        updated_at=timezone.now() - datetime.timedelta(days=400)
    )

    cleanup(days=90)

    assert not Lead.objects.exists()


def test_deleting_the_user_deletes_their_leads(session):
    user = User.objects.create_user("ana")
    capture(session, GOOD, user=user)

    user.delete()

    assert not Lead.objects.exists()


def test_admin_exports_selected_leads_as_csv(client, session):
    capture(session, {**GOOD, "name": "=HYPERLINK(evil)"})
    staff = User.objects.create_superuser("boss", password="x")
    client.force_login(staff)

    response = client.post(
        "/admin/sophie_chat/lead/",
        {"action": "export_csv", "_selected_action": [Lead.objects.get().pk]},
    )

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0][:4] == ["id", "created_at", "service", "neighbourhood"]
    assert rows[1][2] == "Paint two rooms"
    # A spreadsheet must not run what a visitor typed.
    assert rows[1][5] == "'=HYPERLINK(evil)"


def test_the_lead_admin_is_read_only(client):
    staff = User.objects.create_superuser("boss", password="x")
    client.force_login(staff)

    assert client.get("/admin/sophie_chat/lead/").status_code == 200
    assert client.get("/admin/sophie_chat/lead/add/").status_code == 403


def test_lead_capture_is_offered_when_configured_and_the_model_has_tools():
    context = offers.OfferContext(locale="pt-br", session_id="s1")
    with override_settings(SOPHIE_CHAT=WITH_TOOLS):
        offer = asyncio.run(offer_lead_capture(context))
        assert offer_lead_capture in offers.providers()

    assert offer.kind == "lead"
    assert "nossa equipe" in offer.text


@pytest.mark.parametrize(
    "settings",
    [
        {"LLM": {"BACKEND": "sophie_chat.llm.dummy.DummyBackend"}},
        # The offline backend cannot call the tool: offering it would be a promise it cannot keep.
        {**WITH_TOOLS, "LLM": {"BACKEND": "sophie_chat.llm.offline.OfflineBackend"}},
    ],
)
def test_lead_capture_is_not_offered_otherwise(settings):
    context = offers.OfferContext(locale="en", session_id="s1")
    with override_settings(SOPHIE_CHAT=settings):
        assert asyncio.run(offer_lead_capture(context)) is None


def test_the_demo_style_tools_setting_loads_capture_lead():
    with override_settings(SOPHIE_CHAT=WITH_TOOLS):
        assert registry.get("capture_lead") is capture_lead


# Checks --------------------------------------------------------------------------


def lead_check_ids(leads: dict) -> list[str]:
    with override_settings(SOPHIE_CHAT={"LEADS": leads}):
        return sorted(message.id for message in check_leads())


def test_the_default_leads_setting_passes_the_checks():
    with override_settings(SOPHIE_CHAT={}):
        assert check_leads() == []


@pytest.mark.parametrize(
    "leads",
    [
        {"FIELDS": ["service", "name", "phone", "budget"]},
        {"FIELDS": ["service", "phone"], "REQUIRED": ["name"]},
        {"FIELDS": ["service", "name"], "REQUIRED": []},
    ],
    ids=["unknown field", "required not asked", "no contact field"],
)
def test_e025_leads_fields_that_capture_lead_cannot_use(leads):
    assert lead_check_ids(leads) == ["sophie_chat.E025"]


def test_e026_notify_entries_that_are_not_email_addresses():
    assert lead_check_ids({"NOTIFY": ["sales@example.com", "the sales team"]}) == [
        "sophie_chat.E026"
    ]


# Through a turn ----------------------------------------------------------------------


async def test_a_model_that_cannot_answer_is_offered_capture_lead_and_told_to_offer_it():
    with settings_with(TOOLS=["sophie_chat.tools.leads.capture_lead"]):
        model = backends.llm()  # the DummyBackend of these settings
        await turn(await new_session("pt-br"), "Vocês consertam carros?")

    request = model.requests[-1]
    assert [definition.name for definition in request.tools] == ["capture_lead"]
    assert [offer.kind for offer in request.offers] == ["lead"]
    assert "nossa equipe" in request.messages[0].content


async def test_without_capture_lead_nothing_is_offered(dummy_llm):
    await turn(await new_session("en"), "Do you repair cars?")

    assert dummy_llm.requests[-1].offers == ()
