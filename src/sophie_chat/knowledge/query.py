"""The knowledge search query of a turn, built from the conversation.

A visitor's follow-up often leans on what they asked before: "and how much
is it?" after "do you fix leaking taps?" says nothing searchable by itself.
:func:`search_query` joins such a question with the earlier question it
leans on, and leaves a question that stands on its own alone ("How do I pay
with Pix?", or "and do you also walk dogs?", which asks something new). The
result is a :class:`SearchQuery`: a plain string (the earlier question, then
the new one) that every knowledge source can search, which also keeps the
two apart, so that the built-in sources weigh the earlier words less than
the new ones and count them only as support when they judge how much of
the question an entry covers.
"""

from __future__ import annotations

from collections.abc import Sequence

from sophie_chat.knowledge import text

#: A question with at most this many search terms is short: it leans on the
#: conversation ("is it free?", "e no cartão?", "quantos dias?").
SHORT_QUESTION_TERMS = 2
#: How many earlier questions a chain of follow-ups reaches back to.
MAX_EARLIER_QUESTIONS = 2

# Folded, as text.words gives them. A question that opens with one of these
# continues the conversation ("and in Porto Alegre?", "e se chover?").
_CONNECTIVES = (
    ("and",),
    ("also",),
    ("but",),
    ("so",),
    ("then",),
    ("what", "about"),
    ("how", "about"),
    ("what", "if"),
    ("e",),
    ("mas",),
    ("entao",),
    ("tambem",),
    ("e", "se"),
    ("e", "quanto"),
    ("e", "para"),
    ("e", "pra"),
)
# Words that refer back to something said before ("how long does it take?",
# "quanto custa isso?").
_REFERRING_WORDS = """
    it its this that these those them they one ones same
    isso isto esse essa esses essas aquilo aquele aquela dele dela deles delas
    disso nisso desse dessa nesse nessa mesmo mesma
"""
_REFERRING = frozenset(_REFERRING_WORDS.split())
# Words addressing the assistant: a question with one of them, a search term
# and nothing referring back has its own subject and verb, and asks something
# new ("and do you also walk dogs?", "e vocês fazem dedetização?").
_ADDRESSING = frozenset({"you", "your", "voce", "voces", "tu"})
# A question with more terms than this stands on its own even with a
# referring word ("is it possible to pay a cleaning with Pix in instalments?").
_REFERRING_MAX_TERMS = 4


class SearchQuery(str):
    """A search query that is a question plus the earlier questions it leans on.

    As a string it is the earlier questions and the question joined, oldest
    first, so any knowledge source can search it. :attr:`question` and
    :attr:`context` keep the parts: the built-in sources count the words only
    the context has at a discount, and only as supporting evidence.
    """

    question: str
    context: tuple[str, ...]

    def __new__(cls, question: str, context: Sequence[str] = ()) -> SearchQuery:
        context = tuple(part for part in context if part.strip())
        query = super().__new__(cls, "\n".join([*context, question]))
        query.question = question
        query.context = context
        return query

    def __repr__(self) -> str:
        return f"SearchQuery({self.question!r}, context={self.context!r})"

    def __reduce__(self) -> tuple[type[SearchQuery], tuple[str, tuple[str, ...]]]:
        return (SearchQuery, (self.question, self.context))


def leans_on_earlier(question: str) -> bool:
    """Whether ``question`` needs the conversation so far to be understood.

    True for a question with no search terms ("and how much is it?"), a
    fairly short one with a word that refers back ("is it free?", "quanto
    custa isso?"), and, unless it addresses the assistant with a question of
    its own ("and do you also walk dogs?"), a short one ("tem multa?", "e
    cartão?") or one that opens with a connective ("and in Porto Alegre?").
    """
    terms = text.terms(question)
    if not terms:
        return True
    words = text.words(question)
    if len(terms) <= _REFERRING_MAX_TERMS and any(word in _REFERRING for word in words):
        return True
    if any(word in _ADDRESSING for word in words):
        return False
    if len(terms) <= SHORT_QUESTION_TERMS:
        return True
    return any(tuple(words[: len(opening)]) == opening for opening in _CONNECTIVES)


def search_query(question: str, earlier: Sequence[str] = ()) -> SearchQuery:
    """The knowledge search query for ``question``, given the visitor's ``earlier`` messages.

    ``earlier`` are the visitor's previous messages in the conversation,
    oldest first (the assistant's answers are not needed). When the question
    :func:`leans on <leans_on_earlier>` the conversation, the previous message
    is its context, and so is the one before that when the previous message
    leaned on it in turn (up to :data:`MAX_EARLIER_QUESTIONS`). Messages
    without a search term ("thanks!", "ok") are skipped over. A question that
    stands on its own is searched alone.
    """
    context: list[str] = []
    leaning = leans_on_earlier(question)
    for message in reversed(earlier):
        if not leaning or len(context) >= MAX_EARLIER_QUESTIONS:
            break
        if not text.terms(message):
            continue
        context.insert(0, message)
        leaning = leans_on_earlier(message)
    return SearchQuery(question, context)
