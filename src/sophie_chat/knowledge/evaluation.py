"""Evaluation cases, and how well a knowledge source answers them.

A case file (YAML or JSON: a list of mappings) says, for questions visitors
ask, which knowledge entries should answer them, which facts the answer must
contain, or that the knowledge base does not cover them and the right answer
is to say so. The format is documented in the header of the demo's own set,
``example_project/knowledge/evaluation.yaml``, and read by :func:`load_cases`.

:func:`evaluate_retrieval` runs the cases through what Sophie does before a
model is involved: the search query from the conversation
(:func:`~sophie_chat.knowledge.query.search_query`), the search, and the
judgement whether the best hit answers the question
(:func:`~sophie_chat.knowledge.grounding.best_answer`), which is also the
offline backend's whole answer.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from sophie_chat.knowledge import text
from sophie_chat.knowledge.base import BaseKnowledgeSource, KnowledgeHit
from sophie_chat.knowledge.grounding import best_answer
from sophie_chat.knowledge.query import search_query

FIELDS = ("question", "locale", "history", "user", "expect_entries", "facts", "decline", "note")


class CaseFileError(ValueError):
    """A case file that cannot be read; the message names the file and the case."""


@dataclass(frozen=True, slots=True)
class Case:
    """One evaluation case (see the module docstring for the file format)."""

    question: str
    locale: str = "en"
    history: tuple[str, ...] = ()
    user: str | None = None
    expect_entries: tuple[str, ...] = ()
    facts: tuple[str, ...] = ()
    decline: bool = False
    note: str = ""

    @property
    def in_scope(self) -> bool:
        """Whether the knowledge base answers it (the case is not a ``decline``)."""
        return not self.decline


def _strings(value: Any, name: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError(f'"{name}" must be a list of texts')
    return tuple(value)


def parse_case(record: Any) -> Case:
    """A :class:`Case` from one mapping of a case file; ``ValueError`` says what is wrong."""
    if not isinstance(record, Mapping):
        raise ValueError("a case must be a mapping of fields")
    unknown = sorted(set(record) - set(FIELDS))
    if unknown:
        raise ValueError(f"unknown field(s) {', '.join(map(repr, unknown))}")
    question = record.get("question")
    if not isinstance(question, str) or not question.strip():
        raise ValueError('"question" is required')
    locale = record.get("locale", "en")
    if not isinstance(locale, str) or not locale.strip():
        raise ValueError('"locale" must be a language code such as "en" or "pt-br"')
    user = record.get("user")
    if user is not None and not isinstance(user, str):
        raise ValueError('"user" must be a username')
    decline = record.get("decline", False)
    if not isinstance(decline, bool):
        raise ValueError('"decline" must be true or false')
    expect = _strings(record.get("expect_entries", []), "expect_entries")
    if decline and expect:
        raise ValueError('a case has "expect_entries" or "decline: true", not both')
    if not decline and not expect:
        raise ValueError('a case needs "expect_entries", or "decline: true"')
    note = record.get("note", "")
    return Case(
        question=question,
        locale=locale.strip().lower().replace("_", "-"),
        history=_strings(record.get("history", []), "history"),
        user=user,
        expect_entries=expect,
        facts=_strings(record.get("facts", []), "facts"),
        decline=decline,
        note=note if isinstance(note, str) else str(note),
    )


def load_cases(path: str | Path) -> list[Case]:
    """The cases of a YAML or JSON case file, in order.

    Raises :class:`CaseFileError` naming the file and each bad case (counted
    from 1), after reading them all.
    """
    path = Path(path)
    try:
        content = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise CaseFileError(f"{path}: cannot be read: {exc}") from exc
    try:
        json_file = path.suffix.lower() == ".json"
        data = json.loads(content) if json_file else yaml.safe_load(content)
    except (ValueError, yaml.YAMLError) as exc:
        raise CaseFileError(f"{path}: not valid {path.suffix.lstrip('.').upper()}: {exc}") from exc
    if not isinstance(data, list):
        raise CaseFileError(f"{path}: expected a list of cases")
    cases: list[Case] = []
    problems: list[str] = []
    for number, record in enumerate(data, start=1):
        try:
            cases.append(parse_case(record))
        except ValueError as exc:
            problems.append(f"{path}: case {number}: {exc}")
    if problems:
        raise CaseFileError("\n".join(problems))
    return cases


def contains_fact(answer: str, fact: str) -> bool:
    """Whether ``answer`` says ``fact``, compared without case or accents."""
    return text.fold(fact) in text.fold(answer)


@dataclass(frozen=True, slots=True)
class CaseResult:
    """What the search found for one case, and the entry it answers with (or None)."""

    case: Case
    hits: tuple[KnowledgeHit, ...]
    answer: KnowledgeHit | None

    @property
    def declined(self) -> bool:
        return self.answer is None

    def found_at(self, rank: int) -> bool:
        """Whether an expected entry is among the first ``rank`` hits."""
        return any(hit.question in self.case.expect_entries for hit in self.hits[:rank])

    @property
    def answered_right(self) -> bool:
        return self.answer is not None and self.answer.question in self.case.expect_entries

    @property
    def facts_found(self) -> int:
        answer = self.answer.answer if self.answer is not None else ""
        return sum(contains_fact(answer, fact) for fact in self.case.facts)


def _share(count: int, total: int) -> float:
    return count / total if total else 1.0


@dataclass(frozen=True, slots=True)
class RetrievalReport:
    """Retrieval numbers over a set of cases (shares from 0 to 1).

    Over the cases the knowledge base covers: ``recall_at_1`` and
    ``recall_at_3`` (an expected entry is the first hit, or among the first
    three), ``answered_right`` (the entry answered with is an expected one:
    the offline backend's answer is right), ``declined_in_scope`` and
    ``fact_coverage`` (the facts found in the answers; a declined case finds
    none). Over the others, ``declined_out_of_scope``.
    """

    results: tuple[CaseResult, ...] = field(repr=False)
    in_scope: int
    out_of_scope: int
    recall_at_1: float
    recall_at_3: float
    answered_right: float
    declined_in_scope: float
    declined_out_of_scope: float
    fact_coverage: float

    def failures(self) -> list[CaseResult]:
        """Cases answered wrongly, declined although covered, or answered although not."""
        return [
            result
            for result in self.results
            if (result.case.in_scope and not result.answered_right)
            or (result.case.decline and not result.declined)
        ]


def report(results: Sequence[CaseResult]) -> RetrievalReport:
    """The :class:`RetrievalReport` of some results."""
    covered = [r for r in results if r.case.in_scope]
    others = [r for r in results if r.case.decline]
    facts = sum(len(r.case.facts) for r in covered)
    return RetrievalReport(
        results=tuple(results),
        in_scope=len(covered),
        out_of_scope=len(others),
        recall_at_1=_share(sum(r.found_at(1) for r in covered), len(covered)),
        recall_at_3=_share(sum(r.found_at(3) for r in covered), len(covered)),
        answered_right=_share(sum(r.answered_right for r in covered), len(covered)),
        declined_in_scope=_share(sum(r.declined for r in covered), len(covered)),
        declined_out_of_scope=_share(sum(r.declined for r in others), len(others)),
        fact_coverage=_share(sum(r.facts_found for r in covered), facts),
    )


async def evaluate_retrieval(
    source: BaseKnowledgeSource, cases: Sequence[Case], *, limit: int = 3
) -> RetrievalReport:
    """Search ``source`` for every case, as a turn would, and report how well it answers."""
    results = []
    for case in cases:
        query = search_query(case.question, case.history)
        hits = tuple(await source.search(query, locale=case.locale, limit=limit))
        results.append(CaseResult(case=case, hits=hits, answer=best_answer(hits)))
    return report(results)
