"""Unanswered questions: what the knowledge base is missing.

A question is recorded (:class:`~sophie_chat.models.UnansweredQuestion`,
grouped by its normalised words, with a count) when retrieval found no
entry that answers it (none, or none it is confident in), or when the
answer says the assistant does not know.
Greetings and small talk (questions made only of stopwords) are not.
``RECORD_UNANSWERED`` turns it off; ``UNSURE_ANSWER_PATTERNS`` replaces the
built-in phrases that mean "I don't know" (regular expressions, matched
against the answer lowercased and without accents).
"""

from __future__ import annotations

import logging
import re
from functools import cache

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from sophie_chat import conf
from sophie_chat.db import database_call
from sophie_chat.knowledge import text
from sophie_chat.models import UnansweredQuestion

logger = logging.getLogger(__name__)

NO_MATCH = "no_match"
MODEL_UNSURE = "model_unsure"

# Matched against the answer folded (lowercase, no accents, straight quotes).
UNSURE_PATTERNS = (
    r"\bi (?:do not|don't|dont) (?:know|have (?:an answer|(?:that|this|enough|any|the) "
    r"information))",
    r"\bi(?:'m| am) not sure\b",
    r"\bi (?:could not|couldn't|can't|cannot) find\b",
    r"\bi don't have an answer\b",
    r"\bnao sei\b",
    r"\bnao tenho (?:certeza|essa informacao|essas informacoes|informac|uma resposta|resposta)",
    r"\bnao encontrei\b",
    r"\bnao consegui encontrar\b",
)


@cache
def _compiled(patterns: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{p})" for p in patterns))


def says_unsure(answer: str) -> bool:
    """Whether an answer says the assistant does not know."""
    configured = conf.get("UNSURE_ANSWER_PATTERNS")
    patterns = tuple(configured) if configured is not None else UNSURE_PATTERNS
    if not patterns:
        return False
    folded = text.fold(answer).replace("\u2019", "'")
    return bool(_compiled(patterns).search(folded))


def question_key(question: str) -> str:
    """The grouping key: the question's search terms, sorted and deduplicated."""
    return " ".join(sorted(set(text.terms(question))))[:255]


def reason_for(question: str, *, searched: bool, found: bool, declined: bool) -> str | None:
    """Why a turn left its question unanswered, or None when it did not.

    ``found``: the search found an entry good enough to answer with
    (:func:`~sophie_chat.knowledge.grounding.best_answer`); ``declined``: the
    answer said it does not know. Nothing found is :data:`NO_MATCH` (whatever
    a model made of it: the knowledge base is missing the answer); an entry
    found and the answer declining, :data:`MODEL_UNSURE`.
    """
    if not conf.get("RECORD_UNANSWERED") or not question_key(question):
        return None
    if searched and not found:
        return NO_MATCH
    if declined:
        return MODEL_UNSURE
    return None


async def record(question: str, *, locale: str, reason: str, session_id: str | None) -> None:
    """Count the question as unanswered (errors are logged, never raised)."""
    try:
        await _count(
            key=question_key(question),
            question=question,
            locale=(locale or "").lower().replace("_", "-")[:16],
            reason=reason,
            session_id=session_id,
        )
    except Exception:
        logger.exception("Could not record an unanswered question", extra={"reason": reason})


@database_call
def _count(*, key: str, question: str, locale: str, reason: str, session_id: str | None) -> None:
    """Count an unanswered question, grouped by ``key`` and ``locale`` (asking again reopens it)."""
    now = timezone.now()
    changes = {
        "count": F("count") + 1,
        "question": question,
        "reason": reason,
        "last_asked_at": now,
        "last_session_id": session_id,
        "resolved": False,
    }
    rows = UnansweredQuestion.objects.filter(key=key, locale=locale)
    if rows.update(**changes):
        return
    try:
        with transaction.atomic():
            UnansweredQuestion.objects.create(
                key=key,
                locale=locale,
                question=question,
                reason=reason,
                first_asked_at=now,
                last_asked_at=now,
                last_session_id=session_id,
            )
    except IntegrityError:
        # Created by a concurrent turn in between: count this one on it.
        rows.update(**changes)
