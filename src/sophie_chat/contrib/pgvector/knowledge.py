"""Hybrid knowledge search: BM25 (and full-text search) plus embedding similarity.

:class:`PgVectorKnowledgeSource` ranks like
:class:`~sophie_chat.knowledge.database.DatabaseKnowledgeSource` and adds,
for each entry, ``semantic_weight`` times the cosine similarity of the
entry's embedding to the question's (when above ``min_similarity``). On
PostgreSQL with the ``vector`` extension the nearest entries are found by
the database (``<=>``); elsewhere the vectors are compared in Python, which
is fine for development and knowledge bases of a few hundred entries.

Embeddings are computed when the knowledge base changes (on the first
search after a change), for the entries whose content changed since.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from typing import Any

from asgiref.sync import sync_to_async
from django.db import connections, router
from django.utils.module_loading import import_string

from sophie_chat.contrib.pgvector.fields import has_pgvector, to_text
from sophie_chat.knowledge.database import DatabaseKnowledgeSource
from sophie_chat.knowledge.ranking import BM25Index, Document, merge_scores

logger = logging.getLogger(__name__)

DEFAULT_EMBEDDER = "sophie_chat.contrib.pgvector.embedders.HashingEmbedder"


def extension_available() -> bool:
    """Whether the default database has the ``vector`` extension installed."""
    from sophie_chat.models import KnowledgeBaseEntry

    connection = connections[router.db_for_read(KnowledgeBaseEntry)]
    return has_pgvector(connection)


def content_hash(doc: Document) -> str:
    content = "\0".join([doc.question, " ".join(doc.keywords), doc.answer])
    return hashlib.sha256(content.encode()).hexdigest()


def _document_text(doc: Document) -> str:
    return "\n".join([doc.question, " ".join(doc.keywords), doc.answer])


class PgVectorKnowledgeSource(DatabaseKnowledgeSource):
    """Database knowledge search plus semantic similarity (``sophie_chat.contrib.pgvector``).

    Options (and every option of ``DatabaseKnowledgeSource``):
        embedder: dotted path to the embedder class (default: the offline
            ``HashingEmbedder``).
        embedder_options: keyword arguments for it (default ``{}``).
        semantic_weight: score points for a similarity of 1.0 (default 6.0).
        min_similarity: similarities below this add nothing (default 0.35).
        semantic_candidates: how many nearest entries to consider (default 20).
    """

    def __init__(
        self,
        *,
        embedder: str = DEFAULT_EMBEDDER,
        embedder_options: dict[str, Any] | None = None,
        semantic_weight: float = 6.0,
        min_similarity: float = 0.35,
        semantic_candidates: int = 20,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        self.embedder = import_string(embedder)(**(embedder_options or {}))
        for name, value in (
            ("semantic_weight", semantic_weight),
            ("min_similarity", min_similarity),
        ):
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ValueError(f"{name} must be a number >= 0, not {value!r}.")
        self.semantic_weight = float(semantic_weight)
        self.min_similarity = float(min_similarity)
        self.semantic_candidates = int(semantic_candidates)
        # Vectors by document position, for comparing in Python (no pgvector).
        self._vectors: dict[int, list[float]] = {}

    def index_built(self, index: BM25Index) -> None:
        """Embed the entries that are new or changed, and load the vectors."""
        from sophie_chat.contrib.pgvector.models import KnowledgeEmbedding

        name = self.embedder.name
        stored = dict(
            KnowledgeEmbedding.objects.filter(embedder=name).values_list("entry_id", "content_hash")
        )
        stale = [doc for doc in index.documents if stored.get(int(doc.id)) != content_hash(doc)]
        for start in range(0, len(stale), 256):
            batch = stale[start : start + 256]
            vectors = self.embedder.embed([_document_text(doc) for doc in batch])
            for doc, vector in zip(batch, vectors, strict=True):
                KnowledgeEmbedding.objects.update_or_create(
                    entry_id=int(doc.id),
                    embedder=name,
                    defaults={"content_hash": content_hash(doc), "embedding": vector},
                )
        if stale:
            logger.info("Knowledge embedded", extra={"entries": len(stale), "embedder": name})
        connection = connections[router.db_for_read(KnowledgeEmbedding)]
        if has_pgvector(connection):
            self._vectors = {}
        else:
            rows = KnowledgeEmbedding.objects.filter(embedder=name).values_list(
                "entry_id", "embedding"
            )
            self._vectors = {
                index.positions[str(pk)]: vector
                for pk, vector in rows
                if str(pk) in index.positions
            }

    async def score(self, index: BM25Index, query: str, *, limit: int) -> dict[int, float]:
        """The database source's scores plus ``semantic_weight`` x each near entry's similarity."""
        scores = await super().score(index, query, limit=limit)
        # The embedder may be slow or remote: asgiref's thread, not a database thread.
        semantic = await sync_to_async(self._semantic_scores)(index, query)
        return merge_scores(scores, semantic)

    def _semantic_scores(self, index: BM25Index, query: str) -> dict[int, float]:
        return {
            position: self.semantic_weight * similarity
            for position, similarity in self.similar(index, query)
            if similarity >= self.min_similarity
        }

    def similar(self, index: BM25Index, query: str) -> Sequence[tuple[int, float]]:
        """``(document position, cosine similarity)`` of the nearest entries."""
        from sophie_chat.contrib.pgvector.models import KnowledgeEmbedding

        (vector,) = self.embedder.embed([query])
        connection = connections[router.db_for_read(KnowledgeEmbedding)]
        if not has_pgvector(connection):
            ranked = sorted(
                (
                    (position, sum(a * b for a, b in zip(vector, other, strict=False)))
                    for position, other in self._vectors.items()
                ),
                key=lambda item: -item[1],
            )
            return ranked[: self.semantic_candidates]
        table = connection.ops.quote_name(KnowledgeEmbedding._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT entry_id, 1 - (embedding <=> %s::vector) FROM {table}"  # noqa: S608
                " WHERE embedder = %s ORDER BY embedding <=> %s::vector LIMIT %s",
                [to_text(vector), self.embedder.name, to_text(vector), self.semantic_candidates],
            )
            rows = cursor.fetchall()
        return [
            (index.positions[str(pk)], float(similarity))
            for pk, similarity in rows
            if str(pk) in index.positions
        ]
