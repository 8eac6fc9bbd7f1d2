"""Semantic knowledge search with pgvector: ``sophie_chat.contrib.pgvector``.

Add ``"sophie_chat.contrib.pgvector"`` to ``INSTALLED_APPS``, migrate, and
set ``SOPHIE_CHAT["KNOWLEDGE"]["BACKEND"]`` to
``"sophie_chat.contrib.pgvector.knowledge.PgVectorKnowledgeSource"``. See
``docs/semantic-search.md``.
"""
