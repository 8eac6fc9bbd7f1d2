"""The knowledge base in the database: :class:`DatabaseKnowledgeSource`.

Search is BM25F (BM25 over several weighted fields) computed in Python over an
in-memory index of the active :class:`~sophie_chat.models.KnowledgeBaseEntry`
rows, so it ranks the same on every database Django supports. The index is
built on the first search and rebuilt only when :meth:`version` changes.
"""

from __future__ import annotations

import logging
import math
import threading
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from asgiref.sync import sync_to_async
from django.db.models import Count, Max, Q

from sophie_chat.knowledge import text
from sophie_chat.knowledge.base import BaseKnowledgeSource, KnowledgeHit

logger = logging.getLogger(__name__)

# Field weights: a match in the question says most about what an entry is for.
QUESTION, KEYWORDS, ANSWER = 0, 1, 2
FIELD_WEIGHTS = (3.0, 2.0, 1.0)
# BM25 parameters (the usual values).
K1 = 1.2
B = 0.75
# Entries that do not exist but contain none of the query's terms: they keep
# a term found in one entry of a tiny knowledge base from looking common.
BACKGROUND_DOCUMENTS = 10
# Per point of priority, clamped to +-10 points: a tie-breaker, not a ranking.
PRIORITY_STEP = 0.01
PRIORITY_CLAMP = 10
# On top of the same-language boost, for an entry in exactly the visitor's locale.
EXACT_LOCALE_BONUS = 0.05


def normalize_locale(locale: str | None) -> str:
    """``"pt_BR"``, ``"PT-br"`` -> ``"pt-br"``; ``None`` -> ``""``."""
    return (locale or "").strip().lower().replace("_", "-")


def language_of(locale: str | None) -> str:
    """The language part of a locale: ``"pt-br"`` -> ``"pt"``."""
    return normalize_locale(locale).split("-", 1)[0]


@dataclass(frozen=True, slots=True)
class _Entry:
    id: str
    question: str
    answer: str
    category: str
    url: str
    locale: str
    priority: int


@dataclass(slots=True)
class _Index:
    """Postings of the active entries, as of one :meth:`version`."""

    version: str
    entries: list[_Entry]
    # term -> [(entry position, (tf in question, tf in keywords, tf in answer))]
    postings: dict[str, list[tuple[int, tuple[int, int, int]]]]
    # Per entry, per field: the field's length divided by its average length.
    relative_lengths: list[tuple[float, float, float]]

    @classmethod
    def build(cls, version: str, rows: Iterable[dict]) -> _Index:
        entries: list[_Entry] = []
        field_terms: list[tuple[list[str], list[str], list[str]]] = []
        for row in rows:
            keywords = row["keywords"] if isinstance(row["keywords"], list) else []
            entries.append(
                _Entry(
                    id=str(row["pk"]),
                    question=row["question"],
                    answer=row["answer"],
                    category=row["category"],
                    url=row["url"],
                    locale=row["locale"],
                    priority=row["priority"],
                )
            )
            field_terms.append(
                (
                    text.terms(row["question"]),
                    text.terms(" ".join(str(k) for k in keywords)),
                    text.terms(row["answer"]),
                )
            )
        count = len(entries) or 1
        averages = [
            (sum(len(fields[f]) for fields in field_terms) / count) or 1.0 for f in range(3)
        ]
        postings: dict[str, list[tuple[int, tuple[int, int, int]]]] = defaultdict(list)
        relative_lengths: list[tuple[float, float, float]] = []
        for position, fields in enumerate(field_terms):
            relative_lengths.append(
                (
                    len(fields[0]) / averages[0],
                    len(fields[1]) / averages[1],
                    len(fields[2]) / averages[2],
                )
            )
            counters = [Counter(terms) for terms in fields]
            for term in set().union(*counters):
                postings[term].append(
                    (position, (counters[0][term], counters[1][term], counters[2][term]))
                )
        return cls(version, entries, dict(postings), relative_lengths)

    def idf(self, term: str) -> float:
        df = len(self.postings.get(term, ()))
        n = len(self.entries) + BACKGROUND_DOCUMENTS
        return math.log(1 + (n - df + 0.5) / (df + 0.5))

    def relevance(self, query_terms: Iterable[str]) -> dict[int, float]:
        """BM25F score of every entry sharing a term with the query (by position)."""
        scores: dict[int, float] = defaultdict(float)
        for term in set(query_terms):
            postings = self.postings.get(term)
            if not postings:
                continue
            idf = self.idf(term)
            for position, frequencies in postings:
                lengths = self.relative_lengths[position]
                weighted = sum(
                    FIELD_WEIGHTS[f] * frequencies[f] / (1 - B + B * lengths[f])
                    for f in range(3)
                    if frequencies[f]
                )
                scores[position] += idf * weighted * (K1 + 1) / (K1 + weighted)
        return scores


class DatabaseKnowledgeSource(BaseKnowledgeSource):
    """Ranked search over the active :class:`~sophie_chat.models.KnowledgeBaseEntry` rows.

    Accents, case, plurals, verb forms and common pt-BR chat abbreviations
    are normalized (see :mod:`sophie_chat.knowledge.text`); a match in the
    question counts most, then the keywords, then the answer. The index lives
    in this instance, per process; while the knowledge base is unchanged a
    search costs one aggregate query.

    Options:
        min_score: entries less relevant than this are not returned, so a
            question the knowledge base knows nothing about gets ``[]``
            (default 2.0). A word matched only in a long answer scores about
            2 to 3, a word of the question about 4 to 6.
        locale_boost: added to the score multiplier of entries in the
            visitor's language (``"pt"``, ``"pt-br"`` and ``"pt_BR"`` are all
            Portuguese), so they rank before entries in other languages of
            similar relevance (default 0.5: x1.5; 0 ranks by relevance alone).
    """

    def __init__(self, *, min_score: float = 2.0, locale_boost: float = 0.5) -> None:
        for name, value in (("min_score", min_score), ("locale_boost", locale_boost)):
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ValueError(f"{name} must be a number >= 0, not {value!r}.")
        self.min_score = float(min_score)
        self.locale_boost = float(locale_boost)
        self._index: _Index | None = None
        # Serializes rebuilds so concurrent searches after an edit load the rows once.
        self._lock = threading.Lock()

    async def version(self) -> str:
        """``"<count>-<active count>-<last update>"`` of all entries.

        Creating, editing (``save()``), deactivating or deleting an entry
        changes it.
        """
        from sophie_chat.models import KnowledgeBaseEntry

        stats = await KnowledgeBaseEntry.objects.aaggregate(
            total=Count("pk"), active=Count("pk", filter=Q(active=True)), last=Max("updated_at")
        )
        last = stats["last"].isoformat() if stats["last"] else ""
        return f"{stats['total']}-{stats['active']}-{last}"

    async def search(
        self, query: str, *, locale: str | None = None, limit: int = 3
    ) -> list[KnowledgeHit]:
        query_terms = text.terms(query)
        if not query_terms or limit <= 0:
            return []
        index = await self._current_index()
        relevance = index.relevance(query_terms)

        language = language_of(locale)
        exact = normalize_locale(locale)
        ranked: list[tuple[float, int, _Entry]] = []
        for position, score in relevance.items():
            if score < self.min_score:
                continue
            entry = index.entries[position]
            factor = 1.0
            if language and language_of(entry.locale) == language:
                factor += self.locale_boost
                if normalize_locale(entry.locale) == exact:
                    factor += EXACT_LOCALE_BONUS
            priority = max(-PRIORITY_CLAMP, min(PRIORITY_CLAMP, entry.priority))
            factor += PRIORITY_STEP * priority
            ranked.append((score * factor, entry.priority, entry))
        ranked.sort(key=lambda item: (-item[0], -item[1], item[2].question))
        return [
            KnowledgeHit(
                id=entry.id,
                question=entry.question,
                answer=entry.answer,
                score=round(score, 4),
                category=entry.category,
                url=entry.url,
                locale=entry.locale,
            )
            for score, _priority, entry in ranked[:limit]
        ]

    async def _current_index(self) -> _Index:
        version = await self.version()
        index = self._index
        if index is not None and index.version == version:
            return index
        return await sync_to_async(self._rebuild)(version)

    def _rebuild(self, version: str) -> _Index:
        from sophie_chat.models import KnowledgeBaseEntry

        with self._lock:
            index = self._index
            # Another search rebuilt it while this one waited for the lock.
            if index is not None and index.version == version:
                return index
            # Rows are read after the version: an edit in between makes the
            # index newer than its version, which costs one extra rebuild, never staleness.
            rows = KnowledgeBaseEntry.objects.filter(active=True).values(
                "pk", "question", "answer", "category", "keywords", "url", "locale", "priority"
            )
            index = _Index.build(version, rows)
            self._index = index
        logger.debug(
            "Knowledge index rebuilt",
            extra={"knowledge_version": version, "entries": len(index.entries)},
        )
        return index
