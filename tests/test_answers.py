"""Answers that use the conversation, cite what they used and say when they do not know.

Real turns (``run_turn``) over knowledge entries in the test database, with
the offline backend or the scripted DummyBackend.
"""

from __future__ import annotations

import asyncio
import logging

import pytest
from channels.db import database_sync_to_async

from sophie_chat import backends, db, offers
from sophie_chat.llm.base import LLMUnavailable
from sophie_chat.llm.offline import no_answer_message
from sophie_chat.models import KnowledgeBaseEntry, UnansweredQuestion
from tests.support.overrides import settings_with
from tests.support.turns import RecordingSink, new_session, turn, turn_request
from tests.support.waiting import eventually

pytestmark = pytest.mark.django_db(transaction=True)

OFFLINE = {"BACKEND": "sophie_chat.llm.offline.OfflineBackend", "OPTIONS": {"delay": 0}}
NO_CACHE = {"ENABLED": False}

PLUMBING = {
    "en": (
        "Do you offer plumbing services?",
        "Yes: leaks, clogged drains and toilets. A visit costs R$ 90 plus parts.",
        ["plumber", "leak", "tap", "faucet"],
    ),
    "pt-br": (
        "Vocês fazem serviços de encanador?",
        "Sim: vazamentos, entupimentos e vasos sanitários. A visita custa R$ 90 mais as peças.",
        ["encanador", "vazamento", "torneira"],
    ),
}
CLEANING = {
    "en": (
        "How much does a house cleaning cost?",
        "A standard cleaning costs R$ 150; a deep cleaning R$ 280.",
        ["cleaning", "price", "cleaner"],
    ),
    "pt-br": (
        "Quanto custa uma faxina?",
        "A faxina padrão custa R$ 150; a faxina pesada, R$ 280.",
        ["faxina", "limpeza", "diarista", "preço"],
    ),
}
CITIES = {
    "en": (
        "Which cities do you cover?",
        "São Paulo, Rio de Janeiro, Belo Horizonte and Curitiba.",
        ["cities", "area", "coverage"],
    ),
    "pt-br": (
        "Em quais cidades vocês atendem?",
        "São Paulo, Rio de Janeiro, Belo Horizonte e Curitiba.",
        ["cidades", "região", "cobertura"],
    ),
}


@pytest.fixture(autouse=True)
async def _database_work_done():
    yield
    await database_sync_to_async(lambda: None)()
    await asyncio.to_thread(db.reset_database_threads, wait=True)


@pytest.fixture
async def knowledge():
    """Three topics, each in English and Portuguese (translations share a URL)."""
    for url, topic in (("/plumbing/", PLUMBING), ("/cleaning/", CLEANING), ("/cities/", CITIES)):
        for locale, (question, answer, keywords) in topic.items():
            await KnowledgeBaseEntry.objects.acreate(
                question=question, answer=answer, keywords=keywords, locale=locale, url=url
            )


async def answer_of(sink):
    return sink.answer()


# -- follow-ups ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("locale", "first", "follow_up"),
    [
        ("en", "Do you fix leaking taps?", "and how much is it?"),
        ("pt-br", "Vocês consertam vazamento?", "e quanto custa?"),
    ],
)
async def test_a_follow_up_is_searched_with_the_question_it_leans_on(
    knowledge, locale, first, follow_up
):
    session = await new_session(locale)
    with settings_with(LLM=OFFLINE, RESPONSE_CACHE=NO_CACHE):
        await turn(session, first)
        sink = await turn(session, follow_up)

    answer = await answer_of(sink)
    assert answer.content == PLUMBING[locale][1]
    assert answer.metadata["sources"] == [{"title": PLUMBING[locale][0], "url": "/plumbing/"}]
    assert await UnansweredQuestion.objects.acount() == 0


async def test_a_follow_up_that_asks_something_new_is_searched_alone(knowledge):
    session = await new_session("en")
    with settings_with(LLM=OFFLINE, RESPONSE_CACHE=NO_CACHE):
        await turn(session, "Do you fix leaking taps?")
        sink = await turn(session, "and do you also walk dogs?")

    assert (await answer_of(sink)).content == no_answer_message("en")
    row = await eventually(UnansweredQuestion.objects.afirst)
    assert row.question == "and do you also walk dogs?"


async def test_a_follow_up_left_unanswered_is_recorded_after_what_it_leans_on(knowledge):
    session = await new_session("en")
    with settings_with(LLM=OFFLINE, RESPONSE_CACHE=NO_CACHE):
        await turn(session, "Do you repair pianos?")
        await turn(session, "can you tune them?")

    questions = await eventually(_unanswered_questions)
    assert questions == ["Do you repair pianos?", "Do you repair pianos? … can you tune them?"]


@database_sync_to_async
def _unanswered_questions():
    if UnansweredQuestion.objects.count() != 2:
        return None
    return sorted(UnansweredQuestion.objects.values_list("question", flat=True))


async def test_the_model_gets_the_entry_a_follow_up_leans_on(knowledge, dummy_llm):
    session = await new_session("en")
    await turn(session, "Do you fix leaking taps?")
    await turn(session, "and how much is it?")

    second = dummy_llm.requests[-1]
    assert second.knowledge[0].question == PLUMBING["en"][0]


# -- sources ------------------------------------------------------------------------


async def test_the_offline_answer_cites_its_one_entry_in_the_visitors_language(knowledge):
    with settings_with(LLM=OFFLINE, RESPONSE_CACHE=NO_CACHE):
        sink = await turn(await new_session("pt-br"), "vocês atendem em Curitiba?")

    answer = await answer_of(sink)
    assert answer.content == CITIES["pt-br"][1]
    assert answer.metadata["sources"] == [{"title": CITIES["pt-br"][0], "url": "/cities/"}]
    assert answer.metadata["declined"] is False


async def test_a_model_answer_cites_the_entries_close_to_the_best_in_its_language(
    knowledge, dummy_llm
):
    dummy_llm.enqueue("We cover São Paulo, Rio, Belo Horizonte and Curitiba.")
    sink = await turn(await new_session("en"), "Do you work in Curitiba?")

    sources = (await answer_of(sink)).metadata["sources"]
    assert sources == [{"title": CITIES["en"][0], "url": "/cities/"}]


async def test_a_model_answer_to_a_question_nothing_answers_cites_nothing(knowledge, dummy_llm):
    dummy_llm.enqueue("House cleaning costs R$ 150.")
    sink = await turn(await new_session("en"), "Do you clean swimming pools?")

    answer = await answer_of(sink)
    assert answer.metadata["sources"] == []
    # The model was told the entries are only related.
    system = dummy_llm.requests[-1].messages[0].content
    assert "no entry that clearly answers this question" in system
    row = await eventually(UnansweredQuestion.objects.afirst)
    assert (row.question, row.reason) == ("Do you clean swimming pools?", "no_match")


@pytest.mark.parametrize(
    ("locale", "question", "reply"),
    [
        ("en", "How much does a house cleaning cost?", "I don't know the price of that, sorry."),
        ("pt-br", "Quanto custa uma faxina?", "Não sei informar esse valor agora."),
    ],
)
async def test_a_declined_model_answer_cites_nothing_and_is_recorded(
    knowledge, dummy_llm, locale, question, reply
):
    dummy_llm.enqueue(reply)
    sink = await turn(await new_session(locale), question)

    answer = await answer_of(sink)
    assert (answer.metadata["declined"], answer.metadata["sources"]) == (True, [])
    row = await eventually(UnansweredQuestion.objects.afirst)
    assert (row.question, row.reason, row.locale) == (question, "model_unsure", locale)


# -- the fallback ---------------------------------------------------------------------


async def test_a_failed_model_falls_back_to_the_entry_that_answers_and_cites_it(
    knowledge, dummy_llm
):
    dummy_llm.enqueue_error(LLMUnavailable("down"))
    sink = await turn(await new_session("en"), "How much does a house cleaning cost?")

    answer = await answer_of(sink)
    assert CLEANING["en"][1] in answer.content
    assert answer.metadata["sources"] == [{"title": CLEANING["en"][0], "url": "/cleaning/"}]


async def test_a_failed_model_never_falls_back_to_a_merely_related_entry(knowledge):
    with settings_with(FALLBACK_MESSAGE="We are busy; back soon."):
        backends.llm().enqueue_error(LLMUnavailable("down"))
        sink = await turn(await new_session("en"), "Do you clean swimming pools?")

    answer = await answer_of(sink)
    assert answer.content == "We are busy; back soon."
    assert answer.metadata["sources"] == []


# -- offers ---------------------------------------------------------------------------


@pytest.fixture
def person_offered():
    """An offer provider, as the handoff feature registers one."""
    asked = []

    async def talk_to_a_person(context):
        asked.append(context)
        text = "Quer falar com uma pessoa?" if context.locale == "pt-br" else "Talk to a person?"
        return offers.Offer("handoff", text)

    offers.provider(talk_to_a_person)
    yield asked
    offers.unregister(talk_to_a_person)


async def test_the_offline_i_dont_know_offers_what_is_available(knowledge, person_offered):
    session = await new_session("pt-br")
    with settings_with(LLM=OFFLINE, RESPONSE_CACHE=NO_CACHE):
        declined = await turn(session, "Quero falar com um humano")
        answered = await turn(session, "Quanto custa uma faxina?")

    assert (await answer_of(declined)).content == (
        f"{no_answer_message('pt-br')}\n\nQuer falar com uma pessoa?"
    )
    assert (await answer_of(answered)).content == CLEANING["pt-br"][1]
    # Asked only when nothing answers the question.
    assert [(c.locale, c.session_id) for c in person_offered] == [("pt-br", session.id)]


async def test_a_model_is_told_what_it_may_offer_when_nothing_answers(
    knowledge, dummy_llm, person_offered
):
    await turn(await new_session("en"), "I want to talk to a human")

    system = dummy_llm.requests[-1].messages[0].content
    assert "When you say you don't know, also offer the visitor this" in system
    assert "Talk to a person?" in system


async def test_a_failed_model_offers_what_is_available_with_the_fallback_message(
    knowledge, person_offered
):
    with settings_with(FALLBACK_MESSAGE="We are busy."):
        backends.llm().enqueue_error(LLMUnavailable("down"))
        sink = await turn(await new_session("en"), "I want to talk to a human")

    assert (await answer_of(sink)).content == "We are busy.\n\nTalk to a person?"


async def test_a_failing_offer_provider_is_logged_and_skipped(knowledge, person_offered, caplog):
    async def broken(context):
        raise RuntimeError("presence store down")

    offers.provider(broken)
    try:
        with settings_with(LLM=OFFLINE, RESPONSE_CACHE=NO_CACHE), caplog.at_level(logging.ERROR):
            sink = await turn(await new_session("en"), "I want to talk to a human")
    finally:
        offers.unregister(broken)

    assert (await answer_of(sink)).content.endswith("\n\nTalk to a person?")
    assert "Offer provider failed" in caplog.text


def test_registering_a_provider_twice_registers_it_once():
    async def once(context):
        return None

    offers.provider(once)
    offers.provider(once)
    try:
        assert offers.providers().count(once) == 1
    finally:
        offers.unregister(once)
    assert once not in offers.providers()


async def test_no_offer_without_providers(knowledge):
    with settings_with(LLM=OFFLINE, RESPONSE_CACHE=NO_CACHE):
        sink = await turn(await new_session("en"), "I want to talk to a human")

    assert (await answer_of(sink)).content == no_answer_message("en")


async def test_a_question_is_recorded_even_if_the_visitor_leaves_while_it_is(knowledge):
    from sophie_chat.engine import run_turn
    from sophie_chat.evaluation import EvaluationRecords

    started, release = asyncio.Event(), asyncio.Event()

    class SlowRecords(EvaluationRecords):
        async def record_unanswered(self, question, *, locale, reason, session_id):
            started.set()
            await release.wait()
            await super().record_unanswered(
                question, locale=locale, reason=reason, session_id=session_id
            )

    records = SlowRecords()
    with settings_with(LLM=OFFLINE, RESPONSE_CACHE=NO_CACHE):
        session = await new_session("en")
        task = asyncio.ensure_future(
            run_turn(turn_request(session, "Do you repair pianos?"), RecordingSink(), records)
        )
        await started.wait()
        task.cancel()  # the visitor closed the tab after stream_end
        with pytest.raises(asyncio.CancelledError):
            await task
        release.set()

        assert await eventually(lambda: records.unanswered) == ["no_match"]


async def test_an_i_dont_know_is_not_cached(knowledge, dummy_llm):
    dummy_llm.enqueue("I don't know how much that costs.", "A standard cleaning costs R$ 150.")
    await turn(await new_session("en"), "How much does a house cleaning cost?")

    sink = await turn(await new_session("en"), "How much does a house cleaning cost?")

    answer = await answer_of(sink)
    assert answer.content == "A standard cleaning costs R$ 150."
    assert (answer.metadata["cached"], len(dummy_llm.requests)) == (False, 2)
