"""What an answer stands on: the entry good enough to answer with, and the sources to cite.

A search returns the entries most related to a question, which is not the
same as entries that answer it: "Do you clean swimming pools?" finds the
house-cleaning prices. :func:`best_answer` is the one judgement every part
of Sophie asks ("is the best hit good enough to answer with?"), made from
the hits' :attr:`~sophie_chat.knowledge.base.KnowledgeHit.confident` flags,
which the knowledge source sets (the built-in sources from their
``confident_score`` and ``confident_coverage`` options). :func:`sources_for` chooses
the entries an answer cites, so that ``metadata.sources`` lists what the
answer used rather than everything the search found.
"""

from __future__ import annotations

from collections.abc import Sequence

from sophie_chat.knowledge.base import KnowledgeHit
from sophie_chat.knowledge.ranking import language_of

#: A model answer cites the hits scoring at least this share of the best
#: one's score. Chosen on the demo's evaluation set (docs/retrieval.md).
SOURCES_RATIO = 0.8


def best_answer(hits: Sequence[KnowledgeHit]) -> KnowledgeHit | None:
    """The first hit, when the source judged it good enough to answer with; else None.

    None means the knowledge base does not answer the question: the offline
    backend says it does not know, and the question counts as unanswered.
    Hits from a source that cannot judge are all trusted, so the first one is
    returned whenever there is one.
    """
    if hits and hits[0].confident:
        return hits[0]
    return None


def sources_for(
    hits: Sequence[KnowledgeHit],
    *,
    locale: str | None,
    ratio: float = SOURCES_RATIO,
) -> list[KnowledgeHit]:
    """The hits a model's answer in ``locale`` cites, best first.

    Nothing when the search found no :func:`best_answer` (the question is not
    one the knowledge base answers). Otherwise the hits scoring at least
    ``ratio`` times the best hit's score, keeping only those in the answer's
    language when there are any; one per URL (or per question, for entries
    without one).
    """
    if best_answer(hits) is None:
        return []
    top = hits[0].score
    close = [hit for hit in hits if hit.score >= ratio * top]
    language = language_of(locale)
    same = [hit for hit in close if language_of(hit.locale) == language]
    chosen: list[KnowledgeHit] = []
    seen: set[str] = set()
    for hit in same or close:
        identity = hit.url or hit.question
        if identity not in seen:
            seen.add(identity)
            chosen.append(hit)
    return chosen
