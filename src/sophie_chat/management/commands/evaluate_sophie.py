"""``manage.py evaluate_sophie CASES_FILE``: how well Sophie answers, measured.

Answers every case of a YAML or JSON case file (the format of
``example_project/knowledge/evaluation.yaml``) with real turns, on the
site's configured knowledge source and model, leaving nothing behind (see
:mod:`sophie_chat.evaluation`), and reports retrieval recall@1 and @3,
answer fact coverage, decline precision and recall, latency, tokens and
cost, as a table and, with ``--json``, as JSON. Thresholds given on the
command line make it exit with status 1 when they are not met, so a site's
CI can gate a knowledge base change; status 2 means the cases could not be
run. See docs/evaluating.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from sophie_chat import backends, evaluation
from sophie_chat.knowledge.evaluation import CaseFileError, load_cases

#: Exit status when the cases cannot be run (a bad file, an unknown user).
CANNOT_RUN = 2
#: Exit status when the thresholds are not met.
BELOW_THRESHOLDS = 1


def _share(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if not 0 <= number <= 1:
        raise argparse.ArgumentTypeError(f"must be a number from 0 to 1, not {value!r}")
    return number


def _non_negative(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if number < 0:
        raise argparse.ArgumentTypeError(f"must be a number >= 0, not {value!r}")
    return number


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, not {value!r}")
    return number


@dataclass(frozen=True)
class Threshold:
    """A command-line threshold on one number of the report."""

    option: str
    attribute: str
    #: ">=": the number must reach it; "<=": it must not exceed it.
    direction: str
    kind: Any
    #: The row of the table it applies to.
    label: Any


THRESHOLDS = (
    Threshold(
        "--min-recall-at-1", "recall_at_1", ">=", _share, gettext_lazy("retrieval recall@1")
    ),
    Threshold(
        "--min-recall-at-3", "recall_at_3", ">=", _share, gettext_lazy("retrieval recall@3")
    ),
    Threshold(
        "--min-fact-coverage", "fact_coverage", ">=", _share, gettext_lazy("answer fact coverage")
    ),
    Threshold(
        "--min-decline-precision",
        "decline_precision",
        ">=",
        _share,
        gettext_lazy("decline precision"),
    ),
    Threshold(
        "--min-decline-recall", "decline_recall", ">=", _share, gettext_lazy("decline recall")
    ),
    Threshold(
        "--max-in-scope-declined",
        "in_scope_declined",
        "<=",
        _share,
        gettext_lazy("in scope, declined"),
    ),
    Threshold(
        "--max-latency-p95", "latency_p95_ms", "<=", _non_negative, gettext_lazy("latency p95")
    ),
    Threshold("--max-cost", "cost", "<=", _non_negative, gettext_lazy("estimated cost")),
)


class Command(BaseCommand):
    help = (
        "Answer the cases of a YAML or JSON case file with Sophie's real turns (the configured "
        "knowledge source and model; nothing is stored or counted) and report retrieval "
        "recall, fact coverage, declines, latency, tokens and cost. Exits with status 1 "
        "when a threshold given is not met, 2 when the cases cannot be run."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("cases_file", help="A YAML or JSON file of evaluation cases.")
        parser.add_argument(
            "--json",
            metavar="FILE",
            help='Also write the report as JSON to FILE ("-": to standard output, instead '
            "of the table).",
        )
        parser.add_argument(
            "--concurrency",
            type=_positive_int,
            default=1,
            help="Cases answered at the same time (default 1). More is faster with a remote "
            "model, and makes each answer's latency that of a busier site.",
        )
        parser.add_argument(
            "--progress",
            action=argparse.BooleanOptionalAction,
            default=None,
            help="Show progress on standard error (default: when it is a terminal).",
        )
        parser.add_argument(
            "--failures",
            action="store_true",
            help="List every case answered wrongly, declined wrongly or missing facts "
            "(also with -v 2).",
        )
        for threshold in THRESHOLDS:
            parser.add_argument(
                threshold.option,
                type=threshold.kind,
                metavar="N",
                help=f"Fail unless the {threshold.label} is {threshold.direction} N.",
            )

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(options["cases_file"])
        try:
            cases = load_cases(path)
        except CaseFileError as exc:
            raise CommandError(str(exc), returncode=CANNOT_RUN) from exc
        if not cases:
            raise CommandError(
                _("%(file)s has no cases.") % {"file": path}, returncode=CANNOT_RUN
            )
        show_progress = options["progress"]
        if show_progress is None:
            show_progress = self.stderr.isatty()
        progress = self.progress_printer() if show_progress else None
        try:
            report = asyncio.run(
                evaluation.evaluate(
                    cases, concurrency=options["concurrency"], progress=progress
                )
            )
        except evaluation.EvaluationError as exc:
            raise CommandError(str(exc), returncode=CANNOT_RUN) from exc
        if show_progress and self.stderr.isatty():
            self.stderr.write("")
        as_json = json.dumps(self.json_report(report, path, options), indent=2, ensure_ascii=False)
        if options["json"] == "-":
            self.stdout.write(as_json)
        else:
            self.write_table(report, options)
            if options["json"]:
                Path(options["json"]).write_text(as_json + "\n", encoding="utf-8")
        if options["failures"] or options["verbosity"] >= 2:
            self.write_failures(report)
        unmet = self.unmet(report, options)
        if unmet:
            raise CommandError(
                _("Below the thresholds: %(unmet)s.") % {"unmet": "; ".join(unmet)},
                returncode=BELOW_THRESHOLDS,
            )

    def progress_printer(self) -> Any:
        """Report each case as it ends: one line rewritten on a terminal, else a line each."""
        terminal = self.stderr.isatty()

        def show(done: int, total: int, outcome: evaluation.CaseOutcome) -> None:
            line = f"[{done}/{total}] " + (
                _("%(problems)d problems") % {"problems": len(outcome.problems())}
                if outcome.problems()
                else _("ok")
            )
            if terminal:
                self.stderr.write(f"\r\033[K{line}", ending="")
            else:
                self.stderr.write(line)
            self.stderr.flush()

        return show

    def json_report(
        self, report: evaluation.EvaluationReport, path: Path, options: dict[str, Any]
    ) -> dict[str, Any]:
        data = report.as_dict()
        data["cases_file"] = str(path)
        data["llm"] = backends.llm().describe().get("backend")
        data["knowledge"] = type(backends.knowledge()).__module__ + "." + (
            type(backends.knowledge()).__qualname__
        )
        data["thresholds"] = {
            threshold.attribute: {"limit": options[self.dest(threshold)], "met": met}
            for threshold, met in self.checked(report, options)
        }
        return data

    @staticmethod
    def dest(threshold: Threshold) -> str:
        return threshold.option.lstrip("-").replace("-", "_")

    def checked(
        self, report: evaluation.EvaluationReport, options: dict[str, Any]
    ) -> list[tuple[Threshold, bool]]:
        """Each threshold given, and whether the report meets it."""
        results = []
        for threshold in THRESHOLDS:
            limit = options.get(self.dest(threshold))
            if limit is None:
                continue
            value = getattr(report, threshold.attribute)
            if value is None:
                # No latency (every case failed) or no price: cannot be shown to be met.
                met = False
            elif threshold.direction == ">=":
                met = value >= limit
            else:
                met = value <= (Decimal(str(limit)) if isinstance(value, Decimal) else limit)
            results.append((threshold, met))
        return results

    def unmet(self, report: evaluation.EvaluationReport, options: dict[str, Any]) -> list[str]:
        unmet = []
        for threshold, met in self.checked(report, options):
            if met:
                continue
            value = getattr(report, threshold.attribute)
            shown = _("unknown") if value is None else _number(value)
            limit = _number(options[self.dest(threshold)])
            unmet.append(f"{threshold.label} {shown} ({threshold.direction} {limit})")
        return unmet

    def write_table(self, report: evaluation.EvaluationReport, options: dict[str, Any]) -> None:
        limits = {t.attribute: (t, met) for t, met in self.checked(report, options)}
        self.stdout.write(
            _(
                "%(cases)d cases (%(in_scope)d the knowledge base answers, %(out)d it does "
                "not), %(turns)d turns, in %(seconds).1f s; model: %(models)s."
            )
            % {
                "cases": report.cases,
                "in_scope": report.in_scope,
                "out": report.out_of_scope,
                "turns": report.turns,
                "seconds": report.seconds,
                "models": ", ".join(report.models) or "-",
            }
        )
        rows = [
            (_("retrieval recall@1"), _share_text(report.recall_at_1), "recall_at_1"),
            (_("retrieval recall@3"), _share_text(report.recall_at_3), "recall_at_3"),
            (_("answer fact coverage"), _share_text(report.fact_coverage), "fact_coverage"),
            (_("decline precision"), _share_text(report.decline_precision), "decline_precision"),
            (_("decline recall"), _share_text(report.decline_recall), "decline_recall"),
            (_("in scope, declined"), _share_text(report.in_scope_declined), "in_scope_declined"),
            (_("sources precision"), _share_text(report.sources_precision), ""),
            (_("sources recall"), _share_text(report.sources_recall), ""),
            (_("latency p50"), _ms_text(report.latency_p50_ms), ""),
            (_("latency p95"), _ms_text(report.latency_p95_ms), "latency_p95_ms"),
            (_("first token p50"), _ms_text(report.first_token_p50_ms), ""),
            (_("first token p95"), _ms_text(report.first_token_p95_ms), ""),
            (
                _("tokens (prompt + completion)"),
                f"{report.prompt_tokens:,} + {report.completion_tokens:,}",
                "",
            ),
            (
                _("estimated cost"),
                _("no price in MODEL_PRICES")
                if report.cost is None
                else f"{report.cost:.4f} {report.currency}",
                "cost",
            ),
            (_("errors, fallbacks"), f"{report.errors}, {report.fallbacks}", ""),
        ]
        header = (_("measure"), _("value"), _("threshold"))
        width = max(len(row[0]) for row in [*rows, header])
        value_width = max(len(row[1]) for row in [*rows, header])
        self.stdout.write("")
        self.stdout.write(f"{header[0]:<{width}}  {header[1]:>{value_width}}  {header[2]}")
        for label, value, attribute in rows:
            line = f"{label:<{width}}  {value:>{value_width}}"
            if attribute in limits:
                threshold, met = limits[attribute]
                limit = _number(options[self.dest(threshold)])
                mark = _("met") if met else _("NOT MET")
                styled = self.style.SUCCESS(mark) if met else self.style.ERROR(mark)
                line += f"  {threshold.direction} {limit} {styled}"
            self.stdout.write(line.rstrip())

    def write_failures(self, report: evaluation.EvaluationReport) -> None:
        failures = report.failures()
        self.stdout.write("")
        if not failures:
            self.stdout.write(_("Every case was answered as expected."))
            return
        self.stdout.write(_("Cases with problems (%(count)d):") % {"count": len(failures)})
        for outcome in failures:
            case = outcome.case
            before = "".join(f"{message!r} → " for message in case.history)
            self.stdout.write(f"- {before}{case.question!r} ({case.locale})")
            self.stdout.write(f"    {'; '.join(outcome.problems(translated=True))}")
            found = ", ".join(repr(hit.question) for hit in outcome.hits[:3]) or "-"
            self.stdout.write("    " + _("found: %(hits)s") % {"hits": found})
            answer = " ".join(outcome.answer.split())
            if len(answer) > 160:
                answer = answer[:157] + "..."
            self.stdout.write("    " + _("answer: %(answer)s") % {"answer": answer or "-"})


def _number(value: Any) -> str:
    if isinstance(value, Decimal):
        return f"{value:.4f}"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:g}"
    return str(int(value)) if isinstance(value, float) else str(value)


def _share_text(value: float) -> str:
    return f"{value:.3f}"


def _ms_text(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f} ms"
