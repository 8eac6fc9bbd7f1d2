"""Recall beyond exact words: typos, shared prefixes, chat shorthand."""

import pytest

from sophie_chat.knowledge.ranking import BM25Index, Document
from sophie_chat.knowledge.text import terms


def index(*questions, locale="pt-br"):
    docs = [
        Document(id=str(n), question=q, answer="", locale=locale)
        for n, q in enumerate(questions, start=1)
    ]
    return BM25Index("v1", docs)


def best(idx, query, *, fuzzy=True):
    scores = idx.score(idx.query_terms(query, fuzzy=fuzzy))
    if not scores:
        return None
    return idx.documents[max(scores, key=scores.get)].question


KB = (
    "Quanto custa uma faxina?",
    "Posso contratar um eletricista?",
    "Como cancelar um agendamento?",
    "Vocês fazem serviços de encanador?",
    "Which payment methods do you accept?",
)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("faxna", "Quanto custa uma faxina?"),  # a letter missing
        ("eletrecista", "Posso contratar um eletricista?"),  # a wrong letter
        ("encandor", "Vocês fazem serviços de encanador?"),  # a letter missing mid-word
        ("cancleamento", "Como cancelar um agendamento?"),  # two letters swapped
        ("paymnet methods", "Which payment methods do you accept?"),
    ],
)
def test_one_typo_still_finds_the_entry(query, expected):
    assert best(index(*KB), query) == expected


def test_typos_are_not_matched_when_fuzzy_is_off():
    assert best(index(*KB), "faxna", fuzzy=False) is None


def test_a_typo_counts_less_than_the_word_itself():
    idx = index(*KB)
    exact = idx.score(idx.query_terms("faxina"))
    typo = idx.score(idx.query_terms("faxna"))
    assert 0 < max(typo.values()) < max(exact.values())


def test_words_sharing_a_long_prefix_meet():
    # "faxineira" and "faxina" share no stem, but a five-letter prefix.
    assert best(index(*KB), "faxineira") == "Quanto custa uma faxina?"


def test_short_unknown_words_are_not_matched_to_near_spellings():
    assert best(index("Do you fix gas leaks?", locale="en"), "gap") is None


@pytest.mark.parametrize(
    ("shorthand", "spelled_out"),
    [
        ("qnt custa", "quanto custa"),
        ("formas de pgto", "formas de pagamento"),
        ("manda no zap", "manda no whatsapp"),
        ("pls book my appt", "please book my appointment"),
    ],
)
def test_chat_shorthand_means_the_words(shorthand, spelled_out):
    assert terms(shorthand) == terms(spelled_out)
