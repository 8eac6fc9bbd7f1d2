"""PostgreSQL full-text search over the knowledge base (used by the database source).

Migration ``sophie_chat.0002_unanswered_questions`` gives the knowledge
base table, on PostgreSQL only, a ``sophie_search`` tsvector column that a
trigger keeps up to date, with a GIN index: each entry's question (weight
A), keywords (B) and answer (C), in the text search configuration of its
locale (``portuguese`` for ``pt*``, ``english`` for ``en*``, also
``spanish``, ``french``, ``german`` and ``italian``; ``simple`` for any
other). Django's model does not declare the column; this module reads it.

The query is plain SQL rather than the ORM's ``SearchQuery``/``SearchRank``
expressions: it runs on every question, and building the equivalent ORM
query cost more than running it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from django.db import connections, router

#: Text search configuration by language (the migration's trigger uses the same).
CONFIGS = {
    "pt": "portuguese",
    "en": "english",
    "es": "spanish",
    "fr": "french",
    "de": "german",
    "it": "italian",
}
DEFAULT_CONFIG = "simple"
SEARCH_COLUMN = "sophie_search"
# ts_rank weights for D, C, B, A: the same order of importance as the BM25 fields.
RANK_WEIGHTS = "{0.1,0.3,0.6,1.0}"


def config_for(language: str) -> str:
    """The text search configuration of entries in ``language`` (``"pt"``)."""
    return CONFIGS.get(language, DEFAULT_CONFIG)


def full_text_ranks(
    model: type, words: Sequence[str], *, languages: Iterable[str], limit: int
) -> list[tuple[str, float]]:
    """``(entry id, rank)`` of the active entries matching any of ``words``, best first.

    Each entry is ranked with the words parsed in its own language's
    configuration; ``languages`` are those the knowledge base has. Any word
    matching is enough (the words are OR-ed, as visitors' questions carry
    words the entries do not).
    """
    if not words:
        return []
    configs = sorted({config_for(language) for language in languages} or {DEFAULT_CONFIG})
    connection = connections[router.db_for_read(model)]
    table = connection.ops.quote_name(model._meta.db_table)
    pk = connection.ops.quote_name(model._meta.pk.column)
    text = " ".join(words)
    # The words OR-ed, in one configuration (plainto_tsquery ANDs them).
    tsquery = "replace(plainto_tsquery(%s::regconfig, %s)::text, ' & ', ' | ')::tsquery"
    # Each entry ranked with its own language's query; "simple" last, as ELSE.
    branches: list[tuple[str, list[object]]] = []
    fallback: tuple[str, list[object]] | None = None
    for config in configs:
        own = [lang for lang, name in CONFIGS.items() if name == config]
        rank = f"ts_rank(%s, {SEARCH_COLUMN}, {tsquery})"
        if own:
            condition = " OR ".join("lower(left(locale, 2)) = %s" for _ in own)
            branches.append((f"WHEN {condition} THEN {rank}", [*own, RANK_WEIGHTS, config, text]))
        else:
            fallback = (f"ELSE {rank}", [RANK_WEIGHTS, config, text])
    if fallback is not None:
        branches.append(fallback)
    # Matched with every configuration's query (one index scan each): a
    # language filter in WHERE would keep PostgreSQL from using the index.
    matches = " OR ".join(f"{SEARCH_COLUMN} @@ {tsquery}" for _ in configs)
    # Identifiers quoted by the backend; every value is a parameter.
    if fallback is not None and len(branches) == 1:
        rank_sql = fallback[0].removeprefix("ELSE ")  # one configuration: no CASE
    else:
        rank_sql = f"CASE {' '.join(branch for branch, _ in branches)} END"
    sql = (
        f"SELECT {pk}, {rank_sql} AS rank"  # noqa: S608
        f" FROM {table} WHERE active AND ({matches})"
        f" ORDER BY rank DESC NULLS LAST, {pk} LIMIT %s"
    )
    params = [param for _, branch_params in branches for param in branch_params]
    for config in configs:
        params += [config, text]
    params.append(limit)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    return [(str(row_pk), float(rank or 0.0)) for row_pk, rank in rows]
