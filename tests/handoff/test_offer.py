"""Offering a person when Sophie cannot answer, and asking for one in so many words."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine

from sophie_chat import handoff, offers
from sophie_chat.handoff.offer import offer_a_person
from sophie_chat.handoff.phrases import asks_for_a_person
from tests.support.handoff import handoff_settings
from tests.support.overrides import settings_with

CONTEXT = offers.OfferContext(locale="pt-br", session_id="s")


@pytest.mark.parametrize(
    "text",
    [
        "quero falar com um atendente",
        "Quero falar com uma pessoa!",
        "posso falar com alguém?",
        "preciso de atendimento humano",
        "talk to a human",
        "Can I speak to an agent please",
        "I want a real person",
        "hablar con un agente",
        "quiero hablar con una persona",
    ],
)
def test_phrases_that_ask_for_a_person(text):
    assert asks_for_a_person(text)


@pytest.mark.parametrize(
    "text",
    ["How much is a cleaning?", "Qual o telefone do prestador?", "the agent was late"],
)
def test_other_questions_do_not(text):
    assert not asks_for_a_person(text)


async def test_a_person_is_offered_in_hours_in_the_visitors_language():
    assert offer_a_person in offers.providers()
    with settings_with(HANDOFF=handoff_settings()):
        offer = await offer_a_person(CONTEXT)

    assert offer == offers.Offer(
        "handoff", 'Digite "falar com uma pessoa" para falar com nossa equipe.'
    )
    assert asks_for_a_person(offer.text)


async def test_nothing_is_offered_out_of_hours_or_without_handoff():
    hours = {"mon": [("09:00", "18:00")]}
    with (
        settings_with(HANDOFF=handoff_settings(HOURS=hours, TIMEZONE="UTC")),
        time_machine.travel(dt.datetime(2026, 12, 7, 20, 0, tzinfo=dt.UTC), tick=False),
    ):
        assert await offer_a_person(CONTEXT) is None
    assert await offer_a_person(CONTEXT) is None  # HANDOFF off (the default)


async def test_nothing_is_offered_when_nobody_is_available():
    async def nobody() -> bool:
        return False

    handoff.availability(nobody)
    try:
        with settings_with(HANDOFF=handoff_settings()):
            assert await offer_a_person(CONTEXT) is None
    finally:
        handoff.forget_availability(nobody)
