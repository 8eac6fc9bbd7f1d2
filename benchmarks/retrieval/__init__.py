"""Retrieval benchmark: does search find the right entry, and how fast?

Labelled visitor questions (``questions.yaml``, pt-BR and English, with
paraphrases, typos, missing accents, abbreviations and slang) are asked of
each knowledge backend over the demo knowledge base
(``example_project/knowledge/home_services.json``) padded with generated
distractor entries. For each backend it reports recall@1 and recall@3 (the
right entry first, or in the first three) and the p50 and p99 time of a
search, the knowledge version check included.

Then each backend answers the demo's evaluation set
(``example_project/knowledge/evaluation.yaml``: follow-ups and questions
the knowledge base does not cover too) over the demo knowledge base alone,
as the offline backend would: how often the entry it answers with is right,
and how often it declines questions it should and should not.

Run it with ``python -m benchmarks.retrieval`` (see ``--help``); the
functions here run inside any configured Django project (the test suite
runs :func:`run` on small numbers).
"""

from __future__ import annotations

import json
import math
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from benchmarks.retrieval.distractors import distractors

ROOT = Path(__file__).resolve().parents[2]
QUESTIONS_FILE = Path(__file__).with_name("questions.yaml")
KNOWLEDGE_FILE = ROOT / "example_project" / "knowledge" / "home_services.json"
CASES_FILE = ROOT / "example_project" / "knowledge" / "evaluation.yaml"
TARGETS = {"recall_at_3": 0.9, "p99_ms": 10.0}


@dataclass(frozen=True, slots=True)
class Question:
    q: str
    locale: str
    url: str
    kind: str = ""


@dataclass(frozen=True, slots=True)
class Result:
    """One backend's numbers."""

    backend: str
    entries: int
    questions: int
    recall_at_1: float
    recall_at_3: float
    p50_ms: float
    p99_ms: float
    build_ms: float
    misses: tuple[tuple[str, str], ...] = field(default=())

    def meets_targets(self) -> bool:
        return self.recall_at_3 >= TARGETS["recall_at_3"] and self.p99_ms <= TARGETS["p99_ms"]


@dataclass(frozen=True, slots=True)
class EvaluationResult:
    """One backend's numbers on the evaluation set (see :class:`RetrievalReport`)."""

    backend: str
    cases: int
    recall_at_1: float
    recall_at_3: float
    answered_right: float
    declined_in_scope: float
    declined_out_of_scope: float
    fact_coverage: float
    mean_ms: float


def load_questions(path: Path = QUESTIONS_FILE) -> list[Question]:
    return [Question(**item) for item in yaml.safe_load(path.read_text(encoding="utf-8"))]


def knowledge_rows(total: int, *, seed: int = 7) -> list[dict[str, Any]]:
    """The demo knowledge base, padded with distractors to ``total`` entries."""
    demo = json.loads(KNOWLEDGE_FILE.read_text(encoding="utf-8"))
    return demo + distractors(max(0, total - len(demo)), seed=seed)


def is_right(hit: Any, question: Question) -> bool:
    return hit.url == question.url and hit.locale.split("-")[0] == question.locale.split("-")[0]


def percentile(values: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile (``fraction`` 0.99 is p99)."""
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, math.ceil(fraction * len(ordered)) - 1))
    return ordered[rank]


async def evaluate(
    name: str, source: Any, questions: Sequence[Question], *, entries: int, rounds: int = 5
) -> Result:
    """Ask every question ``rounds`` times; the first search (index build) is timed apart."""
    started = time.perf_counter()
    await source.search("warm up", locale="en")
    build_ms = (time.perf_counter() - started) * 1000
    at_1 = at_3 = 0
    misses: list[tuple[str, str]] = []
    timings: list[float] = []
    for question in questions:
        hits = []
        for _round in range(max(1, rounds)):
            started = time.perf_counter()
            hits = await source.search(question.q, locale=question.locale, limit=3)
            timings.append((time.perf_counter() - started) * 1000)
        if hits and is_right(hits[0], question):
            at_1 += 1
        if any(is_right(hit, question) for hit in hits[:3]):
            at_3 += 1
        else:
            found = hits[0].question if hits else "(nothing)"
            misses.append((question.q, found))
    count = len(questions) or 1
    return Result(
        backend=name,
        entries=entries,
        questions=len(questions),
        recall_at_1=at_1 / count,
        recall_at_3=at_3 / count,
        p50_ms=statistics.median(timings) if timings else 0.0,
        p99_ms=percentile(timings, 0.99) if timings else 0.0,
        build_ms=build_ms,
        misses=tuple(misses),
    )


def load_database(rows: Sequence[dict[str, Any]]) -> None:
    """Replace the knowledge base with ``rows`` (sync; call it from a thread)."""
    from sophie_chat.models import KnowledgeBaseEntry

    KnowledgeBaseEntry.objects.all().delete()
    from django.db import connection

    KnowledgeBaseEntry.objects.bulk_create(
        [KnowledgeBaseEntry(**row) for row in rows], batch_size=500
    )
    # Planner statistics (and, on PostgreSQL, the GIN index's own), as
    # autovacuum would have them on a site whose knowledge base is loaded.
    statement = {"postgresql": "VACUUM ANALYZE", "sqlite": "ANALYZE"}.get(connection.vendor)
    if statement and connection.get_autocommit():
        with connection.cursor() as cursor:
            cursor.execute(statement)


def write_files(rows: Sequence[dict[str, Any]], folder: Path) -> None:
    """The rows as knowledge files: the demo entries as Markdown, the rest as JSON and YAML."""
    folder.mkdir(parents=True, exist_ok=True)
    demo_count = len(json.loads(KNOWLEDGE_FILE.read_text(encoding="utf-8")))
    for number, row in enumerate(rows[:demo_count], start=1):
        front = {k: v for k, v in row.items() if k not in ("question", "answer")}
        (folder / f"entry-{number:03}.md").write_text(
            "---\n"
            + yaml.safe_dump(front, allow_unicode=True, sort_keys=False)
            + "---\n"
            + f"# {row['question']}\n\n{row['answer']}\n",
            encoding="utf-8",
        )
    rest = list(rows[demo_count:])
    half = len(rest) // 2
    (folder / "generated.json").write_text(json.dumps(rest[:half], ensure_ascii=False), "utf-8")
    (folder / "generated.yaml").write_text(yaml.safe_dump(rest[half:], allow_unicode=True), "utf-8")


def backend_factories(vendor: str) -> dict[str, Callable[[Path], Any]]:
    """Backends worth measuring on this database: name -> factory(files folder)."""
    from sophie_chat.knowledge.database import DatabaseKnowledgeSource
    from sophie_chat.knowledge.files import FileKnowledgeSource

    label = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}.get(vendor, vendor)
    factories: dict[str, Callable[[Path], Any]] = {}
    factories[f"database, {label}"] = lambda folder: DatabaseKnowledgeSource()
    if vendor == "postgresql":
        factories[f"database, {label} (+ full-text)"] = lambda folder: DatabaseKnowledgeSource(
            full_text=True
        )
        try:
            from sophie_chat.contrib.pgvector.knowledge import (
                PgVectorKnowledgeSource,
                extension_available,
            )
        except ImportError:
            pass
        else:
            if extension_available():
                factories[f"pgvector hybrid, {label}"] = lambda folder: PgVectorKnowledgeSource()
    factories["files (Markdown/YAML/JSON)"] = lambda folder: FileKnowledgeSource(path=folder)
    return factories


async def run(
    *,
    entries: int = 5000,
    rounds: int = 5,
    backends: Sequence[str] | None = None,
    questions: Sequence[Question] | None = None,
) -> list[Result]:
    """Load ``entries`` entries into the configured database and a temporary folder,
    then measure each backend (all of them, or those whose name contains one of
    ``backends``)."""
    from asgiref.sync import sync_to_async
    from django.db import connection, connections

    questions = list(questions if questions is not None else load_questions())
    rows = knowledge_rows(entries)
    await sync_to_async(load_database)(rows)
    results = []
    with tempfile.TemporaryDirectory(prefix="sophie-bench-") as tmp:
        folder = Path(tmp)
        write_files(rows, folder)
        # It may ask the database whether pgvector is installed: in a thread.
        factories = await sync_to_async(backend_factories)(connection.vendor)
        for name, factory in factories.items():
            if backends and not any(wanted.lower() in name.lower() for wanted in backends):
                continue
            source = factory(folder)
            results.append(
                await evaluate(name, source, questions, entries=len(rows), rounds=rounds)
            )
    # Searches ran queries from asgiref's worker thread: release its
    # connection, or the database cannot be dropped afterwards.
    await sync_to_async(connections.close_all)()
    return results


async def run_evaluation(
    *, backends: Sequence[str] | None = None, cases_file: Path = CASES_FILE
) -> list[EvaluationResult]:
    """Answer the evaluation set with each backend, over the demo knowledge base alone."""
    from asgiref.sync import sync_to_async
    from django.db import connection, connections

    from sophie_chat.knowledge.evaluation import evaluate_retrieval, load_cases

    cases = load_cases(cases_file)
    rows = knowledge_rows(0)
    await sync_to_async(load_database)(rows)
    results = []
    with tempfile.TemporaryDirectory(prefix="sophie-bench-") as tmp:
        folder = Path(tmp)
        write_files(rows, folder)
        factories = await sync_to_async(backend_factories)(connection.vendor)
        for name, factory in factories.items():
            if backends and not any(wanted.lower() in name.lower() for wanted in backends):
                continue
            source = factory(folder)
            await source.search("warm up", locale="en")
            started = time.perf_counter()
            report = await evaluate_retrieval(source, cases)
            elapsed_ms = (time.perf_counter() - started) * 1000
            results.append(
                EvaluationResult(
                    backend=name,
                    cases=len(cases),
                    recall_at_1=report.recall_at_1,
                    recall_at_3=report.recall_at_3,
                    answered_right=report.answered_right,
                    declined_in_scope=report.declined_in_scope,
                    declined_out_of_scope=report.declined_out_of_scope,
                    fact_coverage=report.fact_coverage,
                    mean_ms=elapsed_ms / max(1, len(cases)),
                )
            )
    await sync_to_async(connections.close_all)()
    return results


def format_table(results: Sequence[Result]) -> str:
    """A Markdown table of the results."""
    lines = [
        "| backend | entries | questions | recall@1 | recall@3 | p50 search | p99 search"
        " | index build |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        lines.append(
            f"| {r.backend} | {r.entries:,} | {r.questions} | {r.recall_at_1:.2f} "
            f"| {r.recall_at_3:.2f} | {r.p50_ms:.2f} ms | {r.p99_ms:.2f} ms "
            f"| {r.build_ms:,.0f} ms |"
        )
    return "\n".join(lines)


def format_evaluation_table(results: Sequence[EvaluationResult]) -> str:
    """A Markdown table of the evaluation set's results."""
    lines = [
        "| backend | cases | recall@1 | recall@3 | answered right | in scope declined"
        " | out of scope declined | facts | mean search |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        lines.append(
            f"| {r.backend} | {r.cases} | {r.recall_at_1:.2f} | {r.recall_at_3:.2f} "
            f"| {r.answered_right:.2f} | {r.declined_in_scope:.2f} "
            f"| {r.declined_out_of_scope:.2f} | {r.fact_coverage:.2f} | {r.mean_ms:.2f} ms |"
        )
    return "\n".join(lines)
