"""Semantic search (sophie_chat.contrib.pgvector): embedders, hybrid ranking, pgvector."""

import os

import pytest
from asgiref.sync import sync_to_async
from django.db import connection, connections
from django.test import override_settings

from sophie_chat import backends
from sophie_chat.contrib.pgvector.embedders import HashingEmbedder
from sophie_chat.contrib.pgvector.knowledge import PgVectorKnowledgeSource, extension_available
from sophie_chat.contrib.pgvector.models import KnowledgeEmbedding
from sophie_chat.models import KnowledgeBaseEntry

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
async def _close_worker_thread_connections():
    yield
    await sync_to_async(connections.close_all)()


def cosine(a, b):
    return sum(x * y for x, y in zip(a, b, strict=True))


def test_hashing_embedder_puts_related_texts_closer_than_unrelated_ones():
    embedder = HashingEmbedder()
    question, typo, unrelated = embedder.embed(
        ["Como cancelar um agendamento?", "cancelamneto do agendamento", "Quanto custa a faxina?"]
    )

    assert cosine(question, typo) > cosine(question, unrelated)
    assert abs(cosine(question, question) - 1.0) < 1e-9


def test_hashing_embedder_is_deterministic():
    assert HashingEmbedder(dimensions=64).embed(["pix"]) == HashingEmbedder(dimensions=64).embed(
        ["pix"]
    )


def test_embedder_is_chosen_by_dotted_path():
    source = PgVectorKnowledgeSource(
        embedder="sophie_chat.contrib.pgvector.embedders.HashingEmbedder",
        embedder_options={"dimensions": 32},
    )
    assert source.embedder.name == "hashing-32"


async def test_entries_are_embedded_once_and_again_when_they_change():
    entry = await KnowledgeBaseEntry.objects.acreate(
        question="Do you clean windows?", answer="Yes, inside and out.", locale="en"
    )
    source = PgVectorKnowledgeSource()
    await source.search("windows")
    first = await KnowledgeEmbedding.objects.aget(entry=entry)
    entry.answer = "Yes, up to the third floor."
    await entry.asave()
    await source.search("windows")
    second = await KnowledgeEmbedding.objects.aget(entry=entry)

    assert first.content_hash != second.content_hash
    assert first.embedding != second.embedding
    assert await KnowledgeEmbedding.objects.acount() == 1


async def test_semantic_similarity_finds_what_words_alone_miss():
    # Neither BM25 (the word is too far from any in the entry) nor full-text
    # search matches "eletrecistaa"; its character trigrams still do.
    await KnowledgeBaseEntry.objects.acreate(
        question="Posso contratar um eletricista?", answer="Pode.", locale="pt-br"
    )
    await KnowledgeBaseEntry.objects.acreate(
        question="Quanto custa uma faxina?", answer="R$ 150.", locale="pt-br"
    )
    words_only = PgVectorKnowledgeSource(semantic_weight=0)
    hybrid = PgVectorKnowledgeSource(semantic_weight=10, min_similarity=0.2)

    assert await words_only.search("eletrecistaa", locale="pt-br") == []
    hits = await hybrid.search("eletrecistaa", locale="pt-br")
    assert [h.question for h in hits] == ["Posso contratar um eletricista?"]


async def test_the_source_is_configured_like_any_backend():
    knowledge = {
        "BACKEND": "sophie_chat.contrib.pgvector.knowledge.PgVectorKnowledgeSource",
        "OPTIONS": {"semantic_weight": 3, "min_score": 1},
    }
    with override_settings(SOPHIE_CHAT={"KNOWLEDGE": knowledge}):
        source = backends.knowledge()
    assert (source.semantic_weight, source.min_score) == (3.0, 1.0)


@pytest.mark.postgres
def test_pgvector_extension_answers_nearest_neighbours():
    if not extension_available():
        if os.environ.get("SOPHIE_REQUIRE_PGVECTOR"):
            pytest.fail("SOPHIE_REQUIRE_PGVECTOR is set but the vector extension is missing")
        pytest.skip(
            "the pgvector extension is not installed in this PostgreSQL "
            "(apt-get install postgresql-NN-pgvector where the distribution has it)"
        )
    KnowledgeBaseEntry.objects.create(question="Do you clean windows?", answer="Yes.")
    KnowledgeBaseEntry.objects.create(question="Do you fix roofs?", answer="Yes.")
    source = PgVectorKnowledgeSource()
    from asgiref.sync import async_to_sync

    index = async_to_sync(source.current_index)()
    nearest = source.similar(index, "window cleaning")

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute"
            " WHERE attrelid = 'sophie_chat_pgvector_knowledgeembedding'::regclass"
            " AND attname = 'embedding'"
        )
        assert cursor.fetchone()[0] == "vector"
    assert index.documents[nearest[0][0]].question == "Do you clean windows?"
