"""Ranking behaviours of the built-in sources: rare words, translations, coverage, confidence."""

import pytest
import yaml

from sophie_chat.knowledge.files import FileKnowledgeSource
from sophie_chat.knowledge.query import SearchQuery
from sophie_chat.knowledge.ranking import BM25Index, Document

SERVICES = [
    {
        "question": "How do refunds work?",
        "answer": "Cancelled in time or the provider did not come: a full refund within a day.",
        "keywords": ["refund", "money back"],
        "url": "/refunds/",
    },
    {
        "question": "Is the work guaranteed?",
        "answer": "Repairs have a 90-day guarantee; cleanings a 48-hour one.",
        "keywords": ["guarantee", "warranty"],
        "url": "/guarantee/",
    },
    {
        "question": "Which cities do you cover?",
        "answer": "We serve São Paulo, Rio de Janeiro, Belo Horizonte, Curitiba and Porto Alegre.",
        "keywords": ["coverage", "cities"],
        "url": "/coverage/",
    },
    {
        "question": "How much does a house cleaning cost?",
        "answer": "A standard cleaning starts at R$ 150 for up to 60 m².",
        "keywords": ["cleaning", "price"],
        "url": "/cleaning/",
    },
    {
        "question": "Do you offer plumbing services?",
        "answer": "Our plumbers fix leaks, clogged drains, toilets and taps. Visit fee: R$ 90.",
        "keywords": ["plumber", "leak"],
        "url": "/plumbing/",
    },
    {
        "question": "Como funciona o reembolso?",
        "answer": "Cancelado no prazo ou o profissional não veio: reembolso integral em um dia.",
        "keywords": ["reembolso", "estorno"],
        "locale": "pt-br",
        "url": "/refunds/",
    },
    {
        "question": "Em quais cidades vocês atendem?",
        "answer": "Atendemos São Paulo, Rio de Janeiro, Belo Horizonte, Curitiba e Porto Alegre.",
        "keywords": ["cidades", "cobertura"],
        "locale": "pt-br",
        "url": "/coverage/",
    },
]


def source_for(tmp_path, entries, **options):
    (tmp_path / "entries.yaml").write_text(yaml.safe_dump(entries), encoding="utf-8")
    return FileKnowledgeSource(path=tmp_path, **options)


@pytest.fixture
def services(tmp_path):
    return source_for(tmp_path, SERVICES)


async def questions(source, query, **kwargs):
    return [hit.question for hit in await source.search(query, **kwargs)]


async def test_a_rare_word_in_an_answer_beats_a_common_one_in_questions(services):
    found = await questions(services, "Do you work in Curitiba?", locale="en")

    assert found[0] == "Which cities do you cover?"


async def test_a_translation_is_not_listed_next_to_its_entry(services):
    hits = await services.search("Curitiba Porto Alegre", locale="en", limit=5)

    assert [hit.url for hit in hits].count("/coverage/") == 1
    assert hits[0].question == "Which cities do you cover?"


async def test_an_entry_found_in_another_language_is_shown_in_the_visitors(services):
    # The English word only the English entry has: the Portuguese visitor gets its translation.
    found = await questions(services, "refund", locale="pt-br")

    assert found[0] == "Como funciona o reembolso?"


async def test_entries_of_one_language_sharing_a_url_are_all_listed(tmp_path):
    source = source_for(
        tmp_path,
        [
            {"question": "Do you clean ovens?", "answer": "Yes, ovens.", "url": "/faq/"},
            {"question": "Do you clean fridges?", "answer": "Yes, fridges.", "url": "/faq/"},
        ],
    )

    found = await questions(source, "clean ovens and fridges", locale="en")

    assert sorted(found) == ["Do you clean fridges?", "Do you clean ovens?"]


async def test_a_question_the_knowledge_base_answers_is_a_confident_hit(services):
    (hit, *_rest) = await services.search("how much is a house cleaning?", locale="en")

    assert hit.question == "How much does a house cleaning cost?"
    assert hit.coverage == 1.0
    assert hit.confident


async def test_a_related_entry_is_not_a_confident_answer(services):
    # "clean" is known; "swimming pools" is what the question is about, and unknown.
    (hit, *_rest) = await services.search("Do you clean swimming pools?", locale="en")

    assert hit.question == "How much does a house cleaning cost?"
    assert hit.coverage < 0.4
    assert not hit.confident


async def test_a_number_the_knowledge_base_lacks_does_not_count_against_an_entry(services):
    with_number = (await services.search("plumbers for 3 taps", locale="en"))[0]
    without = (await services.search("plumbers for taps", locale="en"))[0]

    assert with_number.coverage == without.coverage == 1.0


async def test_words_that_frame_a_question_count_half(services):
    # "work" is in two questions; "refund" names the topic.
    found = await questions(services, "how does a refund work?", locale="en")

    assert found[0] == "How do refunds work?"


async def test_the_confidence_thresholds_are_options(tmp_path):
    lenient = source_for(tmp_path, SERVICES, confident_score=0, confident_coverage=0)

    (hit, *_rest) = await lenient.search("Do you clean swimming pools?", locale="en")

    assert hit.confident


@pytest.mark.parametrize(
    ("option", "value"),
    [("confident_score", -1), ("confident_coverage", 1.5), ("confident_coverage", "x")],
)
def test_bad_confidence_options_are_refused(tmp_path, option, value):
    with pytest.raises(ValueError, match=option):
        FileKnowledgeSource(path=tmp_path, **{option: value})


async def test_a_follow_up_is_searched_with_the_question_it_leans_on(services):
    query = SearchQuery("and how much is it?", ["Do you fix leaking taps?"])

    (hit, *_rest) = await services.search(query, locale="en")

    assert hit.question == "Do you offer plumbing services?"
    assert hit.confident


def test_context_words_count_less_than_the_question_words():
    index = BM25Index(
        "v1",
        [
            Document(id="1", question="Which payment methods?", answer="Pix.", locale="en"),
            Document(id="2", question="Do you fix taps?", answer="Yes.", locale="en"),
        ],
    )
    wanted = index.query_terms(SearchQuery("pay with pix", ["fix taps"]))

    assert wanted["pix"] == 1.0
    assert wanted["tap"] < 1.0


HOURS_AND_PLANS = [
    {
        "question": "What are your opening hours?",
        "answer": "Monday to Friday from 6:00 to 22:00, Saturdays from 8:00 to 14:00.",
        "keywords": ["schedule"],
        "url": "/hours/",
    },
    {
        "question": "How much is the membership?",
        "answer": "It costs R$ 120 a month, or R$ 1,200 for the annual plan.",
        "keywords": ["plan"],
        "url": "/plans/",
    },
    {
        "question": "Can I bring a friend?",
        "answer": "Yes, one guest a week, free.",
        "keywords": ["guest"],
        "url": "/guests/",
    },
]


@pytest.mark.parametrize(
    ("query", "entry"),
    [
        ("What do you charge per month?", "How much is the membership?"),
        ("is there a yearly plan", "How much is the membership?"),
        ("when do you close on weekdays", "What are your opening hours?"),
        ("qual o valor do plano anual?", "How much is the membership?"),
    ],
)
async def test_a_word_finds_the_entry_that_says_it_another_way(tmp_path, query, entry):
    source = source_for(tmp_path, HOURS_AND_PLANS)

    (hit, *_rest) = await source.search(query, locale="en")

    assert hit.question == entry
    assert hit.confident


def test_a_word_counts_once_however_many_synonyms_an_entry_has():
    # "price" stands for "cost", "fee" and "charge": an entry with all of them
    # is not three times as relevant as one with one of them.
    index = BM25Index(
        "v1",
        [
            Document(id="1", question="Costs", answer="The fee is the charge.", locale="en"),
            Document(id="2", question="Costs", answer="The visit.", locale="en"),
        ],
    )

    scores = index.score_words(index.query_words("price"))

    assert scores[0] == pytest.approx(scores[1], rel=0.35)
    assert max(scores.values()) <= index.score_words(index.query_words("cost"))[0]


async def test_an_unknown_kind_of_a_known_thing_is_not_answered(tmp_path):
    source = source_for(
        tmp_path,
        [
            {
                "question": "Quanto custa uma faxina?",
                "answer": "A faxina padrão custa R$ 150.",
                "keywords": ["faxina", "limpeza"],
                "locale": "pt-br",
            },
            {
                "question": "Quanto é a taxa de cancelamento?",
                "answer": "Grátis até 24 horas antes; depois, R$ 30.",
                "keywords": ["cancelar"],
                "locale": "pt-br",
            },
        ],
    )

    (pool, *_rest) = await source.search("Vocês fazem limpeza de piscina?", locale="pt-br")
    (fee, *_rest) = await source.search("tem taxa de cancelamento?", locale="pt-br")

    assert pool.question == "Quanto custa uma faxina?"
    assert not pool.confident
    assert fee.question == "Quanto é a taxa de cancelamento?"
    assert fee.confident


async def test_a_verb_that_only_frames_the_question_does_not_decide(tmp_path):
    source = source_for(tmp_path, HOURS_AND_PLANS)

    (hit, *_rest) = await source.search("can I bring my friend along?", locale="en")
    (unknown, *_rest) = await source.search("can I keep my friend?", locale="en")

    assert hit.question == unknown.question == "Can I bring a friend?"
    assert unknown.confident
