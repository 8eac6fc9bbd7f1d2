"""PostgreSQL full-text search added to the BM25 ranking."""

import re

import pytest
from asgiref.sync import sync_to_async
from django.db import connection, connections

from sophie_chat.knowledge import postgres
from sophie_chat.knowledge.database import DatabaseKnowledgeSource
from sophie_chat.models import KnowledgeBaseEntry

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
async def _close_worker_thread_connections():
    yield
    await sync_to_async(connections.close_all)()


def search_document(pk):
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {postgres.SEARCH_COLUMN}::text FROM sophie_chat_knowledgebaseentry"
            " WHERE id = %s",
            [pk],
        )
        return cursor.fetchone()[0]


def test_entries_are_indexed_in_their_own_language():
    pt = KnowledgeBaseEntry.objects.create(
        question="Vocês fazem consertos?", answer="Sim.", locale="pt-br"
    )
    en = KnowledgeBaseEntry.objects.create(
        question="Do you do repairs?", answer="Yes.", locale="en"
    )
    other = KnowledgeBaseEntry.objects.create(question="Reparaturen?", answer="Ja.", locale="nl")

    # Lexemes of the question carry weight A.
    assert re.search(r"'consert':\d+A", search_document(pt.pk))  # Portuguese stemmer
    assert re.search(r"'repair':\d+A", search_document(en.pk))  # English stemmer
    assert re.search(r"'reparaturen':\d+A", search_document(other.pk))  # "simple": as written


def test_editing_an_entry_updates_its_search_document():
    entry = KnowledgeBaseEntry.objects.create(question="Old?", answer="x", locale="en")
    entry.question = "Gardening services?"
    entry.save()

    assert "garden" in search_document(entry.pk)


async def test_full_text_is_off_unless_asked_for():
    # It measured no better than BM25 alone, at several times the cost (docs/retrieval.md).
    assert not DatabaseKnowledgeSource().uses_full_text()
    assert DatabaseKnowledgeSource(full_text=True).uses_full_text()


async def test_full_text_finds_what_only_the_database_stemmer_matches():
    # Snowball's Portuguese stemmer reduces "garantido" and "garantia" alike;
    # the built-in light stemmer does not (and fuzzy matching is off here).
    await KnowledgeBaseEntry.objects.acreate(
        question="O conserto tem garantia?", answer="Sim, de 90 dias.", locale="pt-br"
    )
    bm25_only = DatabaseKnowledgeSource(fuzzy=False, min_score=0.5)
    both = DatabaseKnowledgeSource(full_text=True, fuzzy=False, min_score=0.5)

    assert await bm25_only.search("garantido", locale="pt-br") == []
    (hit,) = await both.search("garantido", locale="pt-br")
    assert hit.question == "O conserto tem garantia?"


async def test_full_text_never_loses_what_bm25_finds():
    # A typo and a missing accent: PostgreSQL finds neither, BM25 both.
    await KnowledgeBaseEntry.objects.acreate(
        question="Como pedir um orçamento?", answer="Pelo app.", locale="pt-br"
    )
    source = DatabaseKnowledgeSource(full_text=True)

    assert [h.question for h in await source.search("orcamneto")] == ["Como pedir um orçamento?"]


def test_matching_can_use_the_gin_index():
    with connection.cursor() as cursor:
        # A tiny table is scanned whatever the indexes: ask whether the index fits.
        cursor.execute("SET enable_seqscan = off")
        cursor.execute(
            "EXPLAIN SELECT id FROM sophie_chat_knowledgebaseentry"
            f" WHERE {postgres.SEARCH_COLUMN} @@ to_tsquery('english', 'answer7')"
        )
        plan = "\n".join(row[0] for row in cursor.fetchall())
        cursor.execute("RESET enable_seqscan")

    assert "sophie_kb_search_idx" in plan


async def test_a_failing_full_text_query_falls_back_to_bm25(monkeypatch, caplog):
    from django.db import ProgrammingError

    def missing_column(*args, **kwargs):
        raise ProgrammingError('column "sophie_search" does not exist')

    monkeypatch.setattr(postgres, "full_text_ranks", missing_column)
    await KnowledgeBaseEntry.objects.acreate(question="Do you clean windows?", answer="Yes.")
    source = DatabaseKnowledgeSource(full_text=True)

    assert [h.question for h in await source.search("windows")] == ["Do you clean windows?"]
    assert not source.uses_full_text()
    assert "migration sophie_chat.0002" in caplog.text


async def test_entries_of_languages_without_a_configuration_are_found():
    await KnowledgeBaseEntry.objects.acreate(
        question="Hoeveel kost een schoonmaak?", answer="Vanaf 150.", locale="nl"
    )

    source = DatabaseKnowledgeSource(full_text=True, fuzzy=False)
    (hit,) = await source.search("schoonmaak", locale="nl")

    assert hit.locale == "nl"
