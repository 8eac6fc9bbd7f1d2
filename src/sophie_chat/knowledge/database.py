"""The knowledge base in the database: :class:`DatabaseKnowledgeSource`.

Search is BM25F (BM25 over several weighted fields) computed in Python over an
in-memory index of the active :class:`~sophie_chat.models.KnowledgeBaseEntry`
rows, so it ranks the same on every database Django supports, typos and
missing accents included. On PostgreSQL, with ``full_text=True``, the
database's full-text search (``portuguese``, ``english``... configurations
chosen by each entry's locale) adds its own relevance to those scores: it can
only add entries and evidence, never hide what the BM25 ranking found.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from django.db import DatabaseError, connections, router

from sophie_chat.db import run_in_database_thread
from sophie_chat.knowledge import text
from sophie_chat.knowledge.ranking import (
    CONFIDENT_COVERAGE,
    CONFIDENT_SCORE,
    BM25Index,
    Document,
    IndexedKnowledgeSource,
    language_of,
    merge_scores,
    normalize_locale,
)

__all__ = ["DatabaseKnowledgeSource", "language_of", "normalize_locale"]

logger = logging.getLogger(__name__)


class DatabaseKnowledgeSource(IndexedKnowledgeSource):
    """Ranked search over the active :class:`~sophie_chat.models.KnowledgeBaseEntry` rows.

    Accents, case, plurals, verb forms, common chat abbreviations and typos
    are forgiven (see :mod:`sophie_chat.knowledge.text` and
    :mod:`sophie_chat.knowledge.ranking`); a match in the question counts
    most, then the keywords, then the answer. The index lives in this
    instance, per process; while the knowledge base is unchanged a search
    costs one aggregate query (two on PostgreSQL with ``full_text``).

    Each hit says whether it is good enough to answer with
    (:attr:`~sophie_chat.knowledge.base.KnowledgeHit.confident`, see
    :func:`~sophie_chat.knowledge.grounding.best_answer`).

    Options:
        min_score: entries less relevant than this are not returned, so a
            question the knowledge base knows nothing about gets ``[]``
            (default 2.0). A word matched only in a long answer scores about
            2 to 3, a word of the question about 4 to 6.
        locale_boost: added to the score multiplier of entries in the
            visitor's language (``"pt"``, ``"pt-br"`` and ``"pt_BR"`` are all
            Portuguese), so they rank before entries in other languages of
            similar relevance (default 0.5: x1.5; 0 ranks by relevance alone).
        fuzzy: match words the knowledge base does not contain to near
            spellings (one typo away) and shared prefixes, at a discount
            (default True).
        confident_score, confident_coverage: when a hit is good enough to
            answer with, as for
            :class:`~sophie_chat.knowledge.ranking.IndexedKnowledgeSource`.
        full_text: on PostgreSQL, add the database's full-text rank to each
            entry's score (default False: on the retrieval benchmark and the
            demo's evaluation set it found nothing BM25 missed, and a search
            took several times as long; ignored on other databases).
        full_text_weight: how many score points a full-text rank of 1.0 is
            worth (default 4.0).
    """

    def __init__(
        self,
        *,
        min_score: float = 2.0,
        locale_boost: float = 0.5,
        fuzzy: bool = True,
        confident_score: float = CONFIDENT_SCORE,
        confident_coverage: float = CONFIDENT_COVERAGE,
        full_text: bool = False,
        full_text_weight: float = 4.0,
    ) -> None:
        super().__init__(
            min_score=min_score,
            locale_boost=locale_boost,
            fuzzy=fuzzy,
            confident_score=confident_score,
            confident_coverage=confident_coverage,
        )
        if not isinstance(full_text, bool):
            raise ValueError(f"full_text must be True or False, not {full_text!r}.")
        if (
            isinstance(full_text_weight, bool)
            or not isinstance(full_text_weight, int | float)
            or full_text_weight < 0
        ):
            raise ValueError(f"full_text_weight must be a number >= 0, not {full_text_weight!r}.")
        self.full_text = full_text
        self.full_text_weight = float(full_text_weight)
        # Set when the full-text query failed (the migration not applied):
        # searches go on with BM25 alone rather than failing.
        self._full_text_failed = False

    @staticmethod
    def _model():  # type: ignore[no-untyped-def]
        from sophie_chat.models import KnowledgeBaseEntry

        return KnowledgeBaseEntry

    def uses_full_text(self) -> bool:
        """Whether searches add PostgreSQL's full-text rank (on PostgreSQL, when enabled)."""
        if not self.full_text or not self.full_text_weight or self._full_text_failed:
            return False
        alias = router.db_for_read(self._model())
        return connections[alias].vendor == "postgresql"

    async def version(self) -> str:
        """``"<count>-<active count>-<last update>"`` of all entries.

        Creating, editing (``save()``), deactivating or deleting an entry
        changes it. One query, answered from indexes.
        """
        return await self.in_worker_thread(self._version)

    async def in_worker_thread(self, func: Callable[..., Any], *args: Any) -> Any:
        """In Sophie's database threads (:func:`sophie_chat.db.database_call`)."""
        return await run_in_database_thread(func, *args)

    def _version(self) -> str:
        model = self._model()
        connection = connections[router.db_for_read(model)]
        quote = connection.ops.quote_name
        table = quote(model._meta.db_table)
        active = quote(model._meta.get_field("active").column)
        updated = quote(model._meta.get_field("updated_at").column)
        # Three subqueries, not one aggregate with a filter: each is answered
        # from an index (a table scan took milliseconds at 5,000 entries).
        # Identifiers quoted by the backend, the value a parameter.
        sql = (
            f"SELECT (SELECT COUNT(*) FROM {table}),"  # noqa: S608
            f" (SELECT COUNT(*) FROM {table} WHERE {active} = %s),"
            f" (SELECT MAX({updated}) FROM {table})"
        )
        if connection.vendor == "oracle":
            sql += " FROM DUAL"
        with connection.cursor() as cursor:
            cursor.execute(sql, [True])
            total, active_count, last = cursor.fetchone()
        if last is not None and not isinstance(last, str):
            last = last.isoformat()
        return f"{total}-{active_count}-{last or ''}"

    def load_documents(self) -> Iterable[Document]:
        rows = (
            self._model()
            .objects.filter(active=True)
            .values("pk", "question", "answer", "category", "keywords", "url", "locale", "priority")
        )
        for row in rows.iterator(chunk_size=2000):
            keywords = row["keywords"] if isinstance(row["keywords"], list) else []
            yield Document(
                id=str(row["pk"]),
                question=row["question"],
                answer=row["answer"],
                keywords=tuple(str(k) for k in keywords),
                category=row["category"],
                url=row["url"],
                locale=row["locale"],
                priority=row["priority"],
            )

    async def score(self, index: BM25Index, query: str, *, limit: int) -> dict[int, float]:
        """BM25F, plus PostgreSQL's full-text rank when :meth:`uses_full_text`."""
        scores = await super().score(index, query, limit=limit)
        if self.uses_full_text():
            extra = await self.in_worker_thread(self._full_text_scores, index, query, limit)
            scores = merge_scores(scores, extra)
        return scores

    def _full_text_scores(self, index: BM25Index, query: str, limit: int) -> dict[int, float]:
        from sophie_chat.knowledge import postgres

        # Words in more than one entry in 20 say little, and BM25 scored them
        # already; leaving them out keeps the query to an index scan.
        common = max(50, len(index) // 20)
        words = [
            # PostgreSQL does not fold accents: "orcamento" is looked up as the
            # knowledge base spells it ("orçamento") when it does.
            index.spellings.get(text.fold(word), word)
            for word in text.query_words(query)
            if index.document_frequency(text.stem(text.fold(word))) <= common
        ]
        languages = {language_of(doc.locale) for doc in index.documents}
        try:
            ranks = postgres.full_text_ranks(
                self._model(), words, languages=languages, limit=max(30, limit * 10)
            )
        except DatabaseError:
            logger.exception(
                "PostgreSQL full-text search failed (is migration sophie_chat.0002 applied?); "
                "searching with BM25 alone from now on"
            )
            self._full_text_failed = True
            return {}
        positions = index.positions
        return {
            positions[pk]: rank * self.full_text_weight for pk, rank in ranks if pk in positions
        }
