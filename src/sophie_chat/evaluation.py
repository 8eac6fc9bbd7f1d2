"""Evaluating Sophie: evaluation cases answered by real turns, and what they show.

:func:`evaluate` answers each :class:`~sophie_chat.knowledge.evaluation.Case`
the way a visitor's message is answered: one :class:`~sophie_chat.engine.Turn`
per message (the case's earlier messages first), with the site's configured
knowledge source, model, prompt and context providers. Nothing a visitor,
the staff or the operators could see is left behind: the turns keep their
records in memory (:class:`EvaluationRecords`: no conversation, message,
analytics, token budget or unanswered question is stored), and while they
run the response cache is off, the rate limiter lets every message through
and metrics are not recorded. ``manage.py evaluate_sophie`` is the command
line of it (docs/evaluating.md).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone
from django.utils.translation import gettext, gettext_noop

from sophie_chat import analytics, backends, conf, quota
from sophie_chat.context import resolve_user_type
from sophie_chat.engine import Turn, TurnRequest, Visitor, search_knowledge
from sophie_chat.exceptions import ChatError
from sophie_chat.history import HistoryItem
from sophie_chat.knowledge.base import KnowledgeHit
from sophie_chat.knowledge.evaluation import Case, contains_fact
from sophie_chat.ratelimit.base import BaseRateLimiter, Decision
from sophie_chat.store import AnswerRecord, SessionState, StoredMessage, StoredQuestion


class EvaluationError(Exception):
    """The cases cannot be run as given (a user that does not exist)."""


class UnlimitedRateLimiter(BaseRateLimiter):
    """Lets every message through and counts nothing: the rate limiter of an evaluation."""

    async def hit(self, key: str) -> Decision:
        return Decision(allowed=True, remaining=1)

    async def clear(self, key: str) -> None:
        """Nothing is counted, so nothing is forgotten."""


class EvaluationRecords:
    """:class:`~sophie_chat.engine.TurnRecords` that keep a conversation in memory only.

    One per evaluated conversation: each question is "stored" with the
    conversation so far, each answer added to it, and what a turn would have
    recorded elsewhere (analytics events, tokens spent, unanswered
    questions) is kept here for the report.
    """

    def __init__(self) -> None:
        self.history: list[HistoryItem] = []
        self.answers: list[AnswerRecord] = []
        self.events: list[str] = []
        #: The reason each unanswered question would have been recorded with.
        self.unanswered: list[str] = []

    async def find_resend(self, session_id: str, client_message_id: str) -> None:
        return None

    async def open_handoff(self, session_id: str) -> None:
        return None  # an evaluation is never handed to a person

    async def store_question(
        self, session_id: str, content: str, client_message_id: str | None
    ) -> StoredQuestion:
        message = StoredMessage(
            id=str(uuid.uuid4()), role="user", content=content, created_at=timezone.now()
        )
        before = list(self.history)
        self.history.append(HistoryItem("user", content))
        return StoredQuestion(message, before, True)

    async def store_answer(self, record: AnswerRecord) -> StoredMessage:
        self.answers.append(record)
        self.history.append(HistoryItem("assistant", record.content))
        return StoredMessage(
            id=record.id,
            role="assistant",
            content=record.content,
            created_at=timezone.now(),
            status=record.status,
            reply_to=record.reply_to,
            metadata=record.metadata,
        )

    async def count_event(self, session_id: str, counter: str) -> None:
        self.events.append(counter)

    async def tokens_left(self, budget: quota.Budget) -> int | None:
        return None

    async def spend_tokens(self, budget: quota.Budget, tokens: int) -> None:
        """Budgets are not charged for an evaluation."""

    async def record_unanswered(
        self, question: str, *, locale: str, reason: str, session_id: str
    ) -> None:
        self.unanswered.append(reason)


class _Sink:
    """A :class:`~sophie_chat.engine.TurnSink` that notes when the answer began."""

    def __init__(self, start: float) -> None:
        self.start = start
        self.first_token_ms: int | None = None
        self.answer: StoredMessage | None = None

    async def accepted(self, message: StoredMessage, *, new: bool) -> None:
        """Nothing to do: the question is in the records."""

    async def typing(self, is_typing: bool) -> None:
        """Nothing to show."""

    async def started(self, message_id: str, reply_to: str) -> None:
        self.first_token_ms = _ms_since(self.start)

    async def delta(self, message_id: str, text: str) -> None:
        """The whole answer is read from the stored record."""

    async def finished(self, message: StoredMessage) -> None:
        self.answer = message


@dataclass(frozen=True, slots=True)
class CaseOutcome:
    """How the real turn answered one case (its last message)."""

    case: Case
    #: The answer's text ("" when the turn failed).
    answer: str = ""
    #: What the knowledge search found, best first.
    hits: tuple[KnowledgeHit, ...] = ()
    #: The titles of the sources the answer cites.
    sources: tuple[str, ...] = ()
    declined: bool = False
    #: The reason the question would have been recorded as unanswered, if it would.
    unanswered: str | None = None
    model: str = ""
    #: The model's tokens for this answer, and for every turn of the case.
    prompt_tokens: int = 0
    completion_tokens: int = 0
    case_prompt_tokens: int = 0
    case_completion_tokens: int = 0
    #: Estimated cost of every turn of the case (None: no price for the model).
    cost: Decimal | None = None
    #: From the message to the first piece of the answer, and to its end.
    first_token_ms: int | None = None
    total_ms: int = 0
    turns: int = 1
    fallback: bool = False
    #: The error code a visitor would have been sent instead of an answer.
    error: str = ""

    def found_at(self, rank: int) -> bool:
        """Whether an expected entry is among the first ``rank`` hits."""
        return any(hit.question in self.case.expect_entries for hit in self.hits[:rank])

    @property
    def facts_found(self) -> int:
        return sum(contains_fact(self.answer, fact) for fact in self.case.facts)

    @property
    def missing_facts(self) -> tuple[str, ...]:
        return tuple(fact for fact in self.case.facts if not contains_fact(self.answer, fact))

    def problem_messages(self) -> list[tuple[str, dict[str, str]]]:
        """What went wrong for this case, as (message, parameters); empty: nothing."""
        if self.error:
            return [(_PROBLEMS["error"], {"code": self.error})]
        if self.case.decline:
            return [] if self.declined else [(_PROBLEMS["answered"], {})]
        problems: list[tuple[str, dict[str, str]]] = []
        if self.declined:
            problems.append((_PROBLEMS["declined"], {}))
        if not self.found_at(1):
            problems.append((_PROBLEMS["not_first"], {}))
        if self.missing_facts:
            facts = ", ".join(map(repr, self.missing_facts))
            problems.append((_PROBLEMS["facts"], {"facts": facts}))
        return problems

    def problems(self, *, translated: bool = False) -> list[str]:
        """What went wrong for this case (empty: nothing): in English, or ``translated``."""
        return [
            (gettext(message) if translated else message) % parameters
            for message, parameters in self.problem_messages()
        ]


_PROBLEMS = {
    "error": gettext_noop("error %(code)s"),
    "answered": gettext_noop("answered a question it should decline"),
    "declined": gettext_noop("declined a question the knowledge base answers"),
    "not_first": gettext_noop("expected entry not found first"),
    "facts": gettext_noop("facts missing: %(facts)s"),
}


def _share(count: float, total: int) -> float:
    return count / total if total else 1.0


def percentile(values: Sequence[float], share: float) -> float | None:
    """The nearest-rank percentile (``share`` from 0 to 1) of ``values``; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


@dataclass(frozen=True, slots=True)
class EvaluationReport:
    """The numbers of an evaluation (shares from 0 to 1, times in milliseconds).

    Over the cases the knowledge base covers (``expect_entries``):
    ``recall_at_1``/``recall_at_3`` (an expected entry is the search's first
    hit, or among its first three), ``fact_coverage`` (the share of their
    facts the answers contain), ``in_scope_declined``, and
    ``sources_precision``/``sources_recall`` (cited sources that are expected
    entries; answers citing one). Over declines: ``decline_precision`` (the
    declined cases that should have been) and ``decline_recall`` (the
    ``decline: true`` cases that were). Latency is of the last message of
    each case; tokens and cost count every turn run.
    """

    outcomes: tuple[CaseOutcome, ...] = field(repr=False)
    in_scope: int
    out_of_scope: int
    recall_at_1: float
    recall_at_3: float
    fact_coverage: float
    decline_precision: float
    decline_recall: float
    in_scope_declined: float
    sources_precision: float
    sources_recall: float
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    first_token_p50_ms: float | None
    first_token_p95_ms: float | None
    turns: int
    prompt_tokens: int
    completion_tokens: int
    #: Estimated, at ``MODEL_PRICES``; None when a model that answered has no price.
    cost: Decimal | None
    currency: str
    models: tuple[str, ...]
    errors: int
    fallbacks: int
    seconds: float

    @property
    def cases(self) -> int:
        return len(self.outcomes)

    def failures(self) -> list[CaseOutcome]:
        """The cases with a :meth:`~CaseOutcome.problems`, in order."""
        return [outcome for outcome in self.outcomes if outcome.problems()]

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data (``evaluate_sophie --json``)."""
        return {
            "cases": self.cases,
            "in_scope": self.in_scope,
            "out_of_scope": self.out_of_scope,
            "recall_at_1": round(self.recall_at_1, 4),
            "recall_at_3": round(self.recall_at_3, 4),
            "fact_coverage": round(self.fact_coverage, 4),
            "decline_precision": round(self.decline_precision, 4),
            "decline_recall": round(self.decline_recall, 4),
            "in_scope_declined": round(self.in_scope_declined, 4),
            "sources_precision": round(self.sources_precision, 4),
            "sources_recall": round(self.sources_recall, 4),
            "latency_ms": {"p50": self.latency_p50_ms, "p95": self.latency_p95_ms},
            "first_token_ms": {"p50": self.first_token_p50_ms, "p95": self.first_token_p95_ms},
            "turns": self.turns,
            "tokens": {
                "prompt": self.prompt_tokens,
                "completion": self.completion_tokens,
                "total": self.prompt_tokens + self.completion_tokens,
            },
            "cost": None if self.cost is None else str(self.cost.quantize(Decimal("0.000001"))),
            "currency": self.currency,
            "models": list(self.models),
            "errors": self.errors,
            "fallbacks": self.fallbacks,
            "seconds": round(self.seconds, 3),
            "failures": [
                {
                    "question": outcome.case.question,
                    "locale": outcome.case.locale,
                    "history": list(outcome.case.history),
                    "problems": outcome.problems(),
                    "answer": outcome.answer,
                    "hits": [hit.question for hit in outcome.hits],
                    "sources": list(outcome.sources),
                }
                for outcome in self.failures()
            ],
        }


def report(outcomes: Sequence[CaseOutcome], *, seconds: float = 0.0) -> EvaluationReport:
    """The :class:`EvaluationReport` of some outcomes."""
    covered = [o for o in outcomes if o.case.in_scope]
    others = [o for o in outcomes if o.case.decline]
    declined = [o for o in outcomes if o.declined]
    cited = [title for o in covered for title in o.sources]
    expected_cited = sum(
        1 for o in covered for title in o.sources if title in o.case.expect_entries
    )
    answered = [o for o in outcomes if not o.error]
    costs = [o.cost for o in outcomes if o.case_prompt_tokens or o.case_completion_tokens]
    return EvaluationReport(
        outcomes=tuple(outcomes),
        in_scope=len(covered),
        out_of_scope=len(others),
        recall_at_1=_share(sum(o.found_at(1) for o in covered), len(covered)),
        recall_at_3=_share(sum(o.found_at(3) for o in covered), len(covered)),
        fact_coverage=_share(
            sum(o.facts_found for o in covered), sum(len(o.case.facts) for o in covered)
        ),
        decline_precision=_share(sum(o.case.decline for o in declined), len(declined)),
        decline_recall=_share(sum(o.declined for o in others), len(others)),
        in_scope_declined=_share(sum(o.declined for o in covered), len(covered)),
        sources_precision=_share(expected_cited, len(cited)),
        sources_recall=_share(
            sum(any(t in o.case.expect_entries for t in o.sources) for o in covered),
            len(covered),
        ),
        latency_p50_ms=percentile([o.total_ms for o in answered], 0.5),
        latency_p95_ms=percentile([o.total_ms for o in answered], 0.95),
        first_token_p50_ms=percentile(
            [o.first_token_ms for o in answered if o.first_token_ms is not None], 0.5
        ),
        first_token_p95_ms=percentile(
            [o.first_token_ms for o in answered if o.first_token_ms is not None], 0.95
        ),
        turns=sum(o.turns for o in outcomes),
        prompt_tokens=sum(o.case_prompt_tokens for o in outcomes),
        completion_tokens=sum(o.case_completion_tokens for o in outcomes),
        cost=None if any(c is None for c in costs) else sum(costs, Decimal(0)),
        currency=conf.get("COST_CURRENCY"),
        models=tuple(sorted({o.model for o in outcomes if o.model})),
        errors=sum(bool(o.error) for o in outcomes),
        fallbacks=sum(o.fallback for o in outcomes),
        seconds=seconds,
    )


def _ms_since(start: float) -> int:
    return int((time.monotonic() - start) * 1000)


@contextmanager
def without_side_effects() -> Iterator[None]:
    """Settings under which turns leave nothing behind but their records.

    The response cache off (no cached answer is read or written), a rate
    limiter that counts nothing, metrics not recorded, and the engine's
    per-message log lines ("Message stored", "Answer stored": nothing is)
    left out of the site's logs; warnings and errors are kept. Backends are
    built again under them, and again after.
    """
    from django.test.utils import override_settings

    configured = dict(getattr(settings, conf.SETTING_NAME, None) or {})
    changed = {
        **configured,
        "RATE_LIMIT": {"BACKEND": f"{__name__}.UnlimitedRateLimiter", "OPTIONS": {}},
        "RESPONSE_CACHE": {**(configured.get("RESPONSE_CACHE") or {}), "ENABLED": False},
        "METRICS": {**(configured.get("METRICS") or {}), "ENABLED": False},
    }
    engine_logger = logging.getLogger("sophie_chat.engine")
    quiet = _BelowWarning()
    engine_logger.addFilter(quiet)
    try:
        with override_settings(**{conf.SETTING_NAME: changed}):
            yield
    finally:
        engine_logger.removeFilter(quiet)


class _BelowWarning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING


async def _visitors(cases: Sequence[Case]) -> dict[str | None, Visitor]:
    """The visitor of each case's ``user`` (None: anonymous); EvaluationError for unknown ones."""
    from django.contrib.auth.models import AnonymousUser

    visitors: dict[str | None, Visitor] = {
        None: Visitor(user=AnonymousUser(), user_id=None, user_type="anonymous", ip=None)
    }
    names = sorted({case.user for case in cases if case.user})
    if not names:
        return visitors
    model = get_user_model()
    found = {
        getattr(user, model.USERNAME_FIELD): user
        async for user in model._default_manager.filter(
            **{f"{model.USERNAME_FIELD}__in": names}
        )
    }
    missing = [name for name in names if name not in found]
    if missing:
        raise EvaluationError(f"No such user: {', '.join(map(repr, missing))}.")
    for name, user in found.items():
        visitors[name] = Visitor(
            user=user, user_id=user.pk, user_type=await resolve_user_type(user), ip=None
        )
    return visitors


async def run_case(case: Case, visitor: Visitor) -> CaseOutcome:
    """Answer ``case`` with real turns: its earlier messages, then its question."""
    session = SessionState(
        id=str(uuid.uuid4()),
        user_id=visitor.user_id,
        user_type=visitor.user_type,
        status="active",
        locale=case.locale,
        context={},
    )
    records = EvaluationRecords()
    messages = [*case.history, case.question]
    turn: Turn | None = None
    sink = _Sink(time.monotonic())
    error = ""
    total_ms = 0
    for message in messages:
        error = ""
        request = TurnRequest(
            session=session,
            visitor=visitor,
            content=message,
            client_message_id=None,
            locale=case.locale,
            may_be_resent=False,
            # Tools act on real data for a visitor; an evaluation only measures answers.
            use_tools=False,
            # Nor does it call a person: "talk to a human" is answered by Sophie.
            may_hand_over=False,
        )
        sink = _Sink(time.monotonic())
        turn = Turn(request, sink, records)
        try:
            # A session no one else knows: no other turn can run on it, so
            # the per-session lock of run_turn has nothing to guard.
            await turn.run()
        except ChatError as exc:
            error = exc.code
        total_ms = _ms_since(sink.start)
    grounds = turn.grounds if turn is not None else None
    answer = sink.answer
    last = records.answers[-1] if answer is not None and records.answers else None
    metadata = answer.metadata if answer is not None else {}
    prompt = sum(a.prompt_tokens or 0 for a in records.answers)
    completion = sum(a.completion_tokens or 0 for a in records.answers)
    cost: Decimal | None = Decimal(0)
    for record in records.answers:
        if not (record.prompt_tokens or record.completion_tokens):
            continue
        part = analytics.cost_of(
            str(record.metadata.get("model", "")),
            record.prompt_tokens or 0,
            record.completion_tokens or 0,
        )
        cost = None if cost is None or part is None else cost + part
    return CaseOutcome(
        case=case,
        answer=answer.content if answer is not None else "",
        hits=tuple(grounds.hits) if grounds is not None else (),
        sources=tuple(source.get("title", "") for source in metadata.get("sources", [])),
        declined=bool(metadata.get("declined")),
        unanswered=records.unanswered[-1] if records.unanswered and not error else None,
        model=str(metadata.get("model", "")),
        prompt_tokens=(last.prompt_tokens or 0) if last is not None else 0,
        completion_tokens=(last.completion_tokens or 0) if last is not None else 0,
        case_prompt_tokens=prompt,
        case_completion_tokens=completion,
        cost=cost,
        first_token_ms=sink.first_token_ms,
        total_ms=total_ms,
        turns=len(messages),
        fallback=bool(metadata.get("fallback")),
        error=error if answer is None else "",
    )


async def evaluate(
    cases: Sequence[Case],
    *,
    concurrency: int = 1,
    progress: Callable[[int, int, CaseOutcome], None] | None = None,
) -> EvaluationReport:
    """Answer every case with real turns, ``concurrency`` cases at a time; the report.

    ``progress(done, total, outcome)`` is called as each case ends. Raises
    :class:`EvaluationError` before any turn runs when a case names a user
    that does not exist.
    """
    if concurrency < 1:
        raise ValueError("concurrency must be 1 or more")
    visitors = await _visitors(cases)
    started = time.monotonic()
    with without_side_effects():
        try:
            # The first search builds the knowledge index: not a visitor's wait.
            await search_knowledge("warm up", "en")
            outcomes: list[CaseOutcome | None] = [None] * len(cases)
            limit = asyncio.Semaphore(concurrency)
            done = 0

            async def answer(position: int, case: Case) -> None:
                nonlocal done
                async with limit:
                    outcome = await run_case(case, visitors[case.user])
                outcomes[position] = outcome
                done += 1
                if progress is not None:
                    progress(done, len(cases), outcome)

            await asyncio.gather(*(answer(i, case) for i, case in enumerate(cases)))
        finally:
            await backends.llm().aclose()
    finished = [outcome for outcome in outcomes if outcome is not None]
    return report(finished, seconds=time.monotonic() - started)
