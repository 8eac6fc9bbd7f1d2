import asyncio
import json
from pathlib import Path

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.db import connections
from django.test import override_settings

from sophie_chat import backends
from sophie_chat.knowledge.database import DatabaseKnowledgeSource
from sophie_chat.knowledge.text import terms
from sophie_chat.models import KnowledgeBaseEntry

pytestmark = pytest.mark.django_db(transaction=True)

SAMPLE_FILE = (
    Path(__file__).resolve().parents[2] / "example_project" / "knowledge" / "home_services.json"
)


def entry(question, answer="", *, locale="en", keywords=(), **fields):
    return KnowledgeBaseEntry.objects.create(
        question=question, answer=answer, locale=locale, keywords=list(keywords), **fields
    )


@pytest.fixture(autouse=True)
async def _close_worker_thread_connections():
    # Searches query from asgiref's worker thread; close its connection so the
    # test database can be dropped at the end (PostgreSQL refuses while in use).
    yield
    await sync_to_async(connections.close_all)()


@pytest.fixture
def source():
    return DatabaseKnowledgeSource()


@pytest.fixture
def services_kb():
    """A small knowledge base of service questions in both languages."""
    entry(
        "How much does a house cleaning cost?",
        "A standard cleaning starts at R$ 150; deep cleaning is priced separately.",
        keywords=["price", "cleaning"],
    )
    entry(
        "How do I cancel a booking?",
        "Open My bookings and tap Cancel. It is free up to 24 hours before the visit.",
        keywords=["cancellation"],
    )
    entry(
        "Which payment methods do you accept?",
        "Credit card, Pix and bank slip.",
        keywords=["payment", "pix"],
    )
    entry(
        "Como pedir um orçamento?",
        "Descreva o serviço no app e receba o orçamento em minutos, sem custo.",
        locale="pt-br",
        keywords=["orçamento", "preço"],
    )
    entry(
        "Vocês têm eletricista?",
        "Sim, eletricistas certificados instalam tomadas e chuveiros.",
        locale="pt-br",
    )
    entry(
        "Como cancelar um agendamento?",
        "Abra Meus agendamentos e toque em Cancelar.",
        locale="pt-br",
        keywords=["cancelamento"],
    )
    entry(
        "Como falo com o suporte?",
        "Envie uma mensagem pelo chat ou ligue para 0800 123 4567.",
        locale="pt-br",
    )


async def questions(source, query, **kwargs):
    return [hit.question for hit in await source.search(query, **kwargs)]


async def test_question_match_ranks_above_answer_only_match():
    # No threshold: the ranking is the subject here.
    source = DatabaseKnowledgeSource(min_score=0)
    await KnowledgeBaseEntry.objects.acreate(
        question="What is included in a deep cleaning?",
        answer="Inside cupboards, the oven and the fridge. You can reschedule it for free.",
    )
    await KnowledgeBaseEntry.objects.acreate(
        question="How do I reschedule a visit?",
        answer="Open My bookings and pick a new date.",
    )

    found = await questions(source, "reschedule")

    assert found == ["How do I reschedule a visit?", "What is included in a deep cleaning?"]


async def test_query_without_accents_finds_accented_entry(source, services_kb):
    assert (await questions(source, "orcamento"))[0] == "Como pedir um orçamento?"


async def test_plural_finds_singular(source, services_kb):
    assert (await questions(source, "eletricistas"))[0] == "Vocês têm eletricista?"


async def test_portuguese_verb_forms_meet(source, services_kb):
    found = await questions(source, "cancelei", locale="pt-br")

    assert found[0] == "Como cancelar um agendamento?"


@pytest.mark.parametrize("query", ["cancelled", "canceling", "cancellation", "cancels"])
async def test_english_verb_forms_meet(source, services_kb, query):
    found = await questions(source, query, locale="en")

    assert found[0] == "How do I cancel a booking?"


async def test_chat_abbreviation_finds_full_word(source, services_kb):
    # "msg" only matches once expanded to "mensagem".
    found = await questions(source, "mandar msg pro suporte")

    assert found[0] == "Como falo com o suporte?"


def test_abbreviations_expand_to_the_words_they_stand_for():
    assert terms("vc tbm manda msg hj?") == terms("você também manda mensagem hoje?")


@pytest.mark.parametrize(
    ("locale", "first"),
    [
        ("en", "How do I cancel a booking?"),
        ("pt-br", "Como cancelar um agendamento?"),
        ("pt_BR", "Como cancelar um agendamento?"),
        ("pt", "Como cancelar um agendamento?"),
    ],
)
async def test_entries_in_visitors_language_rank_first(source, services_kb, locale, first):
    # "cancel" and "cancelar" share a stem, so both entries match either way.
    found = await questions(source, "cancel", locale=locale)

    assert found[0] == first


async def test_exact_locale_ranks_before_same_language(source):
    await KnowledgeBaseEntry.objects.acreate(
        question="Como pagar com Pix?", answer="Escaneie o QR code.", locale="pt-pt"
    )
    await KnowledgeBaseEntry.objects.acreate(
        question="Como pagar com Pix?", answer="Escaneie o QR code.", locale="pt-br"
    )

    hits = await source.search("pagar com pix", locale="pt_BR")

    assert [hit.locale for hit in hits] == ["pt-br", "pt-pt"]


async def test_priority_breaks_ties(source):
    await KnowledgeBaseEntry.objects.acreate(
        question="Do you clean windows?", answer="Yes.", priority=0
    )
    await KnowledgeBaseEntry.objects.acreate(
        question="Windows: do you clean them?", answer="Yes, inside and out.", priority=5
    )

    hits = await source.search("clean windows")

    assert [hit.answer for hit in hits] == ["Yes, inside and out.", "Yes."]


async def test_inactive_entries_are_never_returned(source, services_kb):
    await KnowledgeBaseEntry.objects.filter(question="Vocês têm eletricista?").aupdate(active=False)

    assert await questions(source, "eletricista") == []


@pytest.mark.parametrize(
    "query", ["hello", "asdfgh", "oi, tudo bem?", "what is the weather like today?", "???", ""]
)
async def test_irrelevant_query_finds_nothing(source, services_kb, query):
    assert await source.search(query) == []


async def test_limit_caps_the_number_of_hits(source, services_kb):
    assert len(await source.search("cancel", limit=1)) == 1


async def test_hit_carries_the_entry(source):
    kb = await KnowledgeBaseEntry.objects.acreate(
        question="Do you work on Sundays?",
        answer="Yes, from 8am to 6pm.",
        category="company",
        url="/hours/",
        locale="en",
    )

    (hit,) = await source.search("sundays")

    assert (hit.id, hit.answer, hit.category, hit.url, hit.locale) == (
        str(kb.pk),
        "Yes, from 8am to 6pm.",
        "company",
        "/hours/",
        "en",
    )
    assert hit.as_source() == {"title": "Do you work on Sundays?", "url": "/hours/"}


async def test_version_changes_when_an_entry_is_edited(source, services_kb):
    before = await source.version()
    kb = await KnowledgeBaseEntry.objects.aget(question="Vocês têm eletricista?")
    kb.answer = "Sim, todos os dias."
    await kb.asave()

    assert await source.version() != before


async def test_version_changes_when_an_entry_is_deleted(source, services_kb):
    before = await source.version()
    await KnowledgeBaseEntry.objects.filter(question="Vocês têm eletricista?").adelete()

    assert await source.version() != before


async def test_version_changes_when_an_entry_is_deactivated_by_update(services_kb):
    # queryset.update() skips auto_now, so the active count must carry the change
    # (and sends no signal: only a version read again sees it).
    source = DatabaseKnowledgeSource(version_max_age=0)
    before = await source.version()
    await KnowledgeBaseEntry.objects.filter(question="Vocês têm eletricista?").aupdate(active=False)

    assert await source.version() != before


async def test_version_is_stable_while_nothing_changes(source, services_kb):
    assert await source.version() == await source.version()


def version_queries(source, reads):
    """How many queries ``reads`` calls of ``source.version()`` send."""
    from django.test.utils import CaptureQueriesContext

    async def read_all():
        return [await source.version() for _ in range(reads)]

    # The version is read in Sophie's database thread; capture every connection's queries.
    with CaptureQueriesContext(connections["default"]) as captured:
        versions = async_to_sync(read_all)()
    return len(captured.captured_queries), versions


@pytest.mark.django_db(transaction=True)
def test_version_is_read_once_within_version_max_age(services_kb):
    source = DatabaseKnowledgeSource(version_max_age=60)
    queries, versions = version_queries(source, 5)
    assert queries == 1
    assert len(set(versions)) == 1


@pytest.mark.django_db(transaction=True)
def test_version_max_age_zero_reads_every_time(services_kb):
    queries, _ = version_queries(DatabaseKnowledgeSource(version_max_age=0), 3)
    assert queries == 3


async def test_an_edit_in_this_process_is_seen_at_once(services_kb):
    source = DatabaseKnowledgeSource(version_max_age=3600)
    before = await source.version()
    kb = await KnowledgeBaseEntry.objects.aget(question="Vocês têm eletricista?")
    kb.answer = "Sim, todos os dias."
    await kb.asave()
    assert await source.version() != before
    await kb.adelete()
    assert await source.version() != before


async def test_an_edit_without_signals_is_seen_after_version_max_age(services_kb):
    # Another process, raw SQL or QuerySet.update(): no signal here, only time.
    source = DatabaseKnowledgeSource(version_max_age=0.3)
    before = await source.version()
    await KnowledgeBaseEntry.objects.filter(question="Vocês têm eletricista?").aupdate(active=False)
    assert await source.version() == before  # remembered
    await asyncio.sleep(0.35)
    assert await source.version() != before
    assert await questions(source, "eletricista") != ["Vocês têm eletricista?"]


@pytest.mark.parametrize("bad", [-1, "2", True, 3601, None])
def test_version_max_age_is_validated(bad):
    with pytest.raises(ValueError, match="version_max_age"):
        DatabaseKnowledgeSource(version_max_age=bad)


async def test_search_reflects_an_edit(source, services_kb):
    await source.search("eletricista")
    kb = await KnowledgeBaseEntry.objects.aget(question="Vocês têm eletricista?")
    kb.question = "Vocês têm encanador?"
    await kb.asave()

    assert await questions(source, "encanador") == ["Vocês têm encanador?"]
    assert await questions(source, "eletricista") != ["Vocês têm eletricista?"]


async def test_search_finds_a_new_entry(source, services_kb):
    await source.search("jardim")
    await KnowledgeBaseEntry.objects.acreate(
        question="Vocês cuidam de jardim?", answer="Sim.", locale="pt-br"
    )

    assert await questions(source, "jardim") == ["Vocês cuidam de jardim?"]


@pytest.mark.django_db
def test_repeated_search_costs_one_query_while_unchanged(django_assert_num_queries, services_kb):
    # Run in this thread so the query counter sees the queries. On PostgreSQL
    # the full-text query is the second one.
    source = DatabaseKnowledgeSource(version_max_age=0)
    async_to_sync(source.search)("cancel")

    with django_assert_num_queries(2 if source.uses_full_text() else 1):
        async_to_sync(source.search)("pix")


@pytest.mark.django_db
def test_repeated_search_costs_no_query_within_version_max_age(
    django_assert_num_queries, services_kb
):
    source = DatabaseKnowledgeSource()
    async_to_sync(source.search)("cancel")

    with django_assert_num_queries(0):
        async_to_sync(source.search)("pix")


@pytest.mark.django_db
def test_search_without_full_text_costs_one_query(django_assert_num_queries, services_kb):
    source = DatabaseKnowledgeSource(full_text=False, version_max_age=0)
    async_to_sync(source.search)("cancel")

    with django_assert_num_queries(1):
        async_to_sync(source.search)("pix")


async def test_min_score_option_filters_weak_matches(services_kb):
    strict = DatabaseKnowledgeSource(min_score=100)

    assert await strict.search("cancel") == []


async def test_locale_boost_zero_ranks_by_relevance_alone(services_kb):
    neutral = DatabaseKnowledgeSource(locale_boost=0)
    boosted = DatabaseKnowledgeSource(locale_boost=0.5)

    plain = await neutral.search("cancel")
    in_pt = await neutral.search("cancel", locale="pt-br")

    assert [h.id for h in plain] == [h.id for h in in_pt]
    assert (await boosted.search("cancel", locale="pt-br"))[0].locale == "pt-br"


@pytest.mark.parametrize(("option", "value"), [("min_score", -1), ("locale_boost", "high")])
def test_invalid_option_is_refused(option, value):
    with pytest.raises(ValueError, match=option):
        DatabaseKnowledgeSource(**{option: value})


def test_options_come_from_settings():
    knowledge = {
        "BACKEND": "sophie_chat.knowledge.database.DatabaseKnowledgeSource",
        "OPTIONS": {"min_score": 3, "locale_boost": 1},
    }
    with override_settings(SOPHIE_CHAT={"KNOWLEDGE": knowledge}):
        source = backends.knowledge()

    assert (source.min_score, source.locale_boost) == (3.0, 1.0)


@pytest.fixture
def sample_kb():
    rows = json.loads(SAMPLE_FILE.read_text(encoding="utf-8"))
    for row in rows:
        KnowledgeBaseEntry.objects.create(**row)


@pytest.mark.parametrize(
    ("query", "locale", "expected"),
    [
        ("qto custa uma faxina?", "pt-br", "/services/cleaning/"),
        ("how much is a cleaning", "en", "/services/cleaning/"),
        ("vcs tem eletricistas?", "pt-br", "/services/electrical/"),
        ("preciso de um encanador urgente", "pt-br", "/services/plumbing/"),
        ("cancelei meu agendamento, e agora?", "pt-br", "/help/cancellation/"),
        ("I cancelled my booking", "en", "/help/cancellation/"),
        ("quero mudar a data do servico", "pt-br", "/help/rescheduling/"),
        ("can I pay with pix?", "en", "/help/payments/"),
        ("quero meu dinheiro de volta", "pt-br", "/help/refunds/"),
        ("vcs atendem em curitiba?", "pt-br", "/coverage/"),
        ("is my personal data safe?", "en", "/privacy/"),
    ],
)
async def test_sample_knowledge_answers_typical_questions(
    source, sample_kb, query, locale, expected
):
    hits = await source.search(query, locale=locale)

    assert hits[0].url == expected
    assert hits[0].locale == locale


@pytest.mark.parametrize("query", ["hello", "asdfgh", "oi, tudo bem?", "who won the game?"])
async def test_sample_knowledge_finds_nothing_for_small_talk(source, sample_kb, query):
    assert await source.search(query, locale="en") == []
