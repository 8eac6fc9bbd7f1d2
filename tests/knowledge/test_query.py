"""The search query built from the conversation: follow-ups lean on the earlier question."""

import json
import pickle
from pathlib import Path

import pytest

from sophie_chat.knowledge.files import FileKnowledgeSource
from sophie_chat.knowledge.query import SearchQuery, leans_on_earlier, search_query

DEMO_KNOWLEDGE = (
    Path(__file__).resolve().parents[2] / "example_project" / "knowledge" / "home_services.json"
)


@pytest.fixture
def demo(tmp_path):
    (tmp_path / "home_services.json").write_text(
        DEMO_KNOWLEDGE.read_text(encoding="utf-8"), encoding="utf-8"
    )
    return FileKnowledgeSource(path=tmp_path)


@pytest.mark.parametrize(
    "question",
    [
        "and how much is it?",
        "is it free?",
        "how long does it take?",
        "and boleto?",
        "and in Porto Alegre?",
        "what about a deep clean?",
        "e quanto custa?",
        "tem multa?",
        "e a faxina pesada?",
        "quanto custa isso?",
        "e no cartão?",
    ],
)
def test_short_and_referring_questions_lean_on_the_earlier_one(question):
    assert leans_on_earlier(question)


@pytest.mark.parametrize(
    "question",
    [
        "Which payment methods do you accept for a deep cleaning?",
        "and do you also walk dogs?",
        "e vocês fazem dedetização?",
        "Quanto custa uma faxina pesada num apartamento grande?",
    ],
)
def test_questions_with_their_own_subject_stand_alone(question):
    assert not leans_on_earlier(question)


def test_a_follow_up_is_joined_with_the_previous_question():
    query = search_query("and how much is it?", ["Hi!", "Do you fix leaking taps?"])

    assert query == "Do you fix leaking taps?\nand how much is it?"
    assert query.question == "and how much is it?"
    assert query.context == ("Do you fix leaking taps?",)


def test_a_question_that_stands_alone_is_searched_alone():
    query = search_query("Which cities do you cover for cleaning?", ["Do you fix taps?"])

    assert query == "Which cities do you cover for cleaning?"
    assert query.context == ()


def test_a_chain_of_follow_ups_reaches_back_to_the_question_they_lean_on():
    earlier = ["Do you fix leaking taps?", "is the visit free?", "thanks!"]

    query = search_query("and on Sundays?", earlier)

    # "thanks!" has nothing to search for, and is skipped over.
    assert query.context == ("Do you fix leaking taps?", "is the visit free?")


def test_a_first_question_has_no_context():
    assert search_query("and how much is it?").context == ()


def test_a_search_query_is_a_string_and_survives_pickling():
    query = search_query("e quanto custa?", ["Vocês consertam vazamento?"])

    assert isinstance(query, str)
    assert json.dumps(query) == json.dumps("Vocês consertam vazamento?\ne quanto custa?")
    assert pickle.loads(pickle.dumps(query)).context == ("Vocês consertam vazamento?",)
    assert "context=" in repr(SearchQuery("x", ["y"]))


@pytest.mark.parametrize(
    ("earlier", "question", "locale", "expected"),
    [
        ("Do you fix leaking taps?", "and how much is it?", "en",
         "Do you offer plumbing services?"),
        ("Can I cancel my booking?", "is it free?", "en", "How do I cancel a booking?"),
        ("Do you work in Curitiba?", "and in Porto Alegre?", "en", "Which cities do you cover?"),
        ("Do you fix leaking taps?", "How do I pay with Pix?", "en",
         "Which payment methods do you accept?"),
        ("Vocês consertam vazamento?", "e quanto custa?", "pt-br",
         "Vocês fazem serviços de encanador?"),
        ("Posso cancelar o agendamento?", "tem multa?", "pt-br", "Como cancelar um agendamento?"),
        ("O serviço tem garantia?", "quantos dias?", "pt-br", "O serviço tem garantia?"),
        ("Quanto custa uma faxina?", "como cancelo um agendamento?", "pt-br",
         "Como cancelar um agendamento?"),
    ],
)
async def test_two_turn_conversations_find_the_entry(demo, earlier, question, locale, expected):
    hits = await demo.search(search_query(question, [earlier]), locale=locale)

    assert hits[0].question == expected
    assert hits[0].confident


async def test_a_follow_up_on_something_new_is_not_answered_with_the_earlier_topic(demo):
    query = search_query("and do you also walk dogs?", ["Do you fix leaking taps?"])

    assert not any(hit.confident for hit in await demo.search(query, locale="en"))
