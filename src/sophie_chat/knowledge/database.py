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
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from typing import Any

from django.db import DatabaseError, connections, router, transaction
from django.db.models.signals import post_delete, post_save

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

__all__ = ["DatabaseKnowledgeSource", "knowledge_changed", "language_of", "normalize_locale"]

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
        version_max_age: seconds the knowledge base's :meth:`version` is
            remembered before it is read again (default 2.0; 0 reads it for
            every search). An entry saved or deleted through the ORM in this
            process is seen at once; an edit made by another process, or by
            SQL or ``QuerySet.update()``, within this many seconds. Under load
            this spares every turn a database round trip, or two.
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
        version_max_age: float = 2.0,
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
        if (
            isinstance(version_max_age, bool)
            or not isinstance(version_max_age, int | float)
            or not 0 <= version_max_age <= 3600
        ):
            raise ValueError(
                f"version_max_age must be a number of seconds from 0 to 3600, "
                f"not {version_max_age!r}."
            )
        self.full_text = full_text
        self.full_text_weight = float(full_text_weight)
        self.version_max_age = float(version_max_age)
        #: The last version read and when (``time.monotonic()``); None: read it again.
        self._remembered: tuple[str, float] | None = None
        #: Bumped by every change seen in this process: a read begun before it is not kept.
        self._changes = 0
        _sources.add(self)
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
        changes it. One query, answered from indexes, at most once every
        ``version_max_age`` seconds (a change through the ORM in this process
        is seen at once).
        """
        remembered = self._remembered
        now = time.monotonic()
        if remembered is not None and now - remembered[1] < self.version_max_age:
            return remembered[0]
        changes = self._changes
        version = await self.in_worker_thread(self._version)
        if changes == self._changes and self.version_max_age:
            self._remembered = (version, now)
        return version

    def forget_version(self) -> None:
        """Read the version again at the next search (the knowledge base changed)."""
        self._changes += 1
        self._remembered = None

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


# Every source of this process, to tell when an entry changes here (weak: a
# source dropped with its settings goes).
_sources: weakref.WeakSet[DatabaseKnowledgeSource] = weakref.WeakSet()
_sources_lock = threading.Lock()


def _forget_versions() -> None:
    with _sources_lock:
        sources = list(_sources)
    for source in sources:
        source.forget_version()


def knowledge_changed(using: str | None = None) -> None:
    """Make this process's searches read the knowledge version again.

    Saving or deleting an entry through the ORM calls it; call it after
    changing entries without signals (``QuerySet.update()``, SQL) for the
    change to be searched at once here rather than within ``version_max_age``.
    Forgets now, and again once the transaction commits: a search in between
    may read and keep the version from before the change.
    """
    _forget_versions()
    transaction.on_commit(_forget_versions, using=using)


def _entry_changed(sender: Any, using: str, **kwargs: Any) -> None:
    knowledge_changed(using)


def connect_signals() -> None:
    """Forget remembered versions when an entry is saved or deleted (AppConfig.ready)."""
    from sophie_chat.models import KnowledgeBaseEntry

    post_save.connect(_entry_changed, sender=KnowledgeBaseEntry, dispatch_uid="sophie_kb_saved")
    post_delete.connect(_entry_changed, sender=KnowledgeBaseEntry, dispatch_uid="sophie_kb_deleted")
