"""``python -m benchmarks.retrieval``: measure knowledge retrieval and print a table.

Run from the repository root with sophie-chat importable (``pip install -e .``
or ``PYTHONPATH=src``). It creates a throwaway database (SQLite in a
temporary folder, or a ``test_...`` database on the server ``--database-url``
points at), loads the demo knowledge base padded with distractors, asks the
labelled questions of every backend and prints recall@1, recall@3 and search
times, then each backend's numbers on the demo's evaluation set.
``--write-docs`` puts the tables into ``docs/retrieval.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS_PAGE = ROOT / "docs" / "retrieval.md"
# One block per database, so SQLite and PostgreSQL results live side by side.
MARKERS = "<!-- benchmark:{vendor}:start -->", "<!-- benchmark:{vendor}:end -->"


def configure(database_url: str, tmp: str) -> None:
    import django
    from django.conf import settings
    from tests.support.settings import postgres_database

    if database_url.startswith(("postgres://", "postgresql://")):
        database = {
            **postgres_database(database_url, NAME="postgres"),
            "TEST": {"NAME": "test_sophie_retrieval_benchmark"},
        }
    else:
        database = {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.path.join(tmp, "bench.sqlite3"),
            "TEST": {"NAME": os.path.join(tmp, "bench-test.sqlite3")},
        }
    apps = ["django.contrib.contenttypes", "django.contrib.auth", "sophie_chat"]
    if database["ENGINE"].endswith("postgresql"):
        try:
            import sophie_chat.contrib.pgvector  # noqa: F401

            apps.append("sophie_chat.contrib.pgvector")
        except ImportError:
            pass
    settings.configure(
        DATABASES={"default": database},
        INSTALLED_APPS=apps,
        USE_TZ=True,
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        SOPHIE_CHAT={"LLM": {"BACKEND": "sophie_chat.llm.dummy.DummyBackend"}},
    )
    django.setup()


def write_docs(table: str, command: str, vendor: str) -> None:
    start, end = (marker.format(vendor=vendor) for marker in MARKERS)
    page = DOCS_PAGE.read_text(encoding="utf-8")
    if start not in page or end not in page:
        raise SystemExit(f"{DOCS_PAGE} has no {start} ... {end} markers")
    head, rest = page.split(start, 1)
    _old, tail = rest.split(end, 1)
    machine = (
        f"{platform.python_implementation()} {platform.python_version()}, {platform.machine()}"
    )
    block = f"{start}\n\n`{command}` ({machine}):\n\n{table}\n\n{end}"
    DOCS_PAGE.write_text(head + block + tail, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.retrieval", description=__doc__)
    parser.add_argument("--entries", type=int, default=5000, help="knowledge base size (5000)")
    parser.add_argument("--rounds", type=int, default=5, help="times each question is asked (5)")
    parser.add_argument(
        "--backend",
        action="append",
        default=[],
        help="only backends whose name contains this (repeatable)",
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL", ""),
        help="postgres://... to measure on PostgreSQL (default: $DATABASE_URL, else SQLite)",
    )
    parser.add_argument("--misses", action="store_true", help="list the questions missed")
    parser.add_argument(
        "--write-docs", action="store_true", help=f"put the table into {DOCS_PAGE.name}"
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="exit 1 unless the first backend meets the targets (recall@3 >= 0.9, p99 <= 10 ms)",
    )
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="sophie-bench-db-") as tmp:
        configure(args.database_url, tmp)
        from django.db import connection

        import benchmarks.retrieval as bench

        vendor = connection.vendor
        name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
        try:
            results = asyncio.run(
                bench.run(entries=args.entries, rounds=args.rounds, backends=args.backend)
            )
            evaluation = asyncio.run(bench.run_evaluation(backends=args.backend))
            connection.close()
        finally:
            connection.creation.destroy_test_db(name, verbosity=0)

    table = (
        bench.format_table(results)
        + "\n\nThe evaluation set, over the demo knowledge base alone:\n\n"
        + bench.format_evaluation_table(evaluation)
    )
    print(table)
    if args.misses:
        for result in results:
            print(f"\n{result.backend}: {len(result.misses)} missed in the top 3")
            for question, found in result.misses:
                print(f"  {question!r} -> {found!r}")
    if args.write_docs:
        command = "python -m benchmarks.retrieval" + (
            f" --entries {args.entries}" if args.entries != 5000 else ""
        )
        if args.database_url:
            command = f"DATABASE_URL=postgres://... {command}"
        write_docs(table, command, vendor)
        print(f"\nWritten to {DOCS_PAGE.relative_to(ROOT)}")
    if args.check and results and not results[0].meets_targets():
        print("\nThe first backend misses the targets.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
