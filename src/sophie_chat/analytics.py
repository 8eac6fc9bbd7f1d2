"""The figures behind the analytics dashboard: per day, and over a period.

A turn pays nothing for these beyond the per-conversation counters it
already keeps in :class:`~sophie_chat.models.ChatAnalytics`: figures are
counted when they are asked for, with a few grouped queries over the stored
conversations (answers, their metadata and timings, feedback, error
records). Retention deletes old conversations; before it does, it freezes
the days they belong to into :class:`~sophie_chat.models.DailyAnalytics`
rows (:func:`freeze_days_through`), which from then on stand for those days.

Days are calendar days in the current time zone (``TIME_ZONE``).
Latency percentiles are exact over stored answers; a period that reaches
into frozen days gets them estimated from per-day histograms, and says so.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Count, Min, Q, Sum
from django.db.models.fields.json import KT
from django.db.models.functions import TruncDate
from django.utils import timezone

from sophie_chat import conf
from sophie_chat.models import (
    ChatErrorEvent,
    ChatMessage,
    ChatSession,
    DailyAnalytics,
    Handoff,
    MessageFeedback,
    ToolCall,
    UnansweredQuestion,
)
from sophie_chat.response_cache import normalize_question

#: Upper bounds (ms) of the latency histogram kept for frozen days; one more bucket above.
LATENCY_BUCKETS_MS = (
    50, 100, 200, 300, 500, 750, 1000, 1500, 2000, 3000,
    5000, 7500, 10000, 15000, 20000, 30000, 60000,
)  # fmt: skip
_EMPTY_HISTOGRAM = (0,) * (len(LATENCY_BUCKETS_MS) + 1)
#: Latest user messages read to find the most asked questions of a period.
TOP_QUESTIONS_SAMPLE = 5000


@dataclass(frozen=True, slots=True)
class Percentiles:
    """p50 and p95 in milliseconds (None without data); ``estimated`` from histograms."""

    p50: int | None = None
    p95: int | None = None
    estimated: bool = False


@dataclass(frozen=True)
class DayFigures:
    """One day's figures (or a period's, summed: then ``day`` is its first day)."""

    day: date
    conversations: int = 0
    user_messages: int = 0
    answers: int = 0
    cache_hits: int = 0
    fallbacks: int = 0
    interrupted: int = 0
    failed: int = 0
    thumbs_up: int = 0
    thumbs_down: int = 0
    rated_conversations: int = 0
    satisfaction_total: int = 0
    #: Error frames sent, by protocol code (``rate_limited`` included).
    errors_by_code: dict[str, int] = field(default_factory=dict)
    #: Failed model calls, by error (``LLMTimeout``...).
    model_failures: dict[str, int] = field(default_factory=dict)
    #: By model name: ``{"answers": n, "prompt_tokens": n, "completion_tokens": n}``.
    usage: dict[str, dict[str, int]] = field(default_factory=dict)
    first_token_histogram: tuple[int, ...] = _EMPTY_HISTOGRAM
    total_histogram: tuple[int, ...] = _EMPTY_HISTOGRAM
    first_token: Percentiles = Percentiles()
    total: Percentiles = Percentiles()
    frozen: bool = False

    @property
    def errors(self) -> int:
        return sum(self.errors_by_code.values())

    @property
    def rate_limited(self) -> int:
        return self.errors_by_code.get("rate_limited", 0)

    @property
    def prompt_tokens(self) -> int:
        return sum(u.get("prompt_tokens", 0) for u in self.usage.values())

    @property
    def completion_tokens(self) -> int:
        return sum(u.get("completion_tokens", 0) for u in self.usage.values())

    @property
    def satisfaction(self) -> float | None:
        """Average satisfaction score (1 to 5) of rated conversations."""
        if not self.rated_conversations:
            return None
        return self.satisfaction_total / self.rated_conversations

    @property
    def cache_hit_rate(self) -> float | None:
        return self.cache_hits / self.answers if self.answers else None

    @property
    def thumbs_up_rate(self) -> float | None:
        rated = self.thumbs_up + self.thumbs_down
        return self.thumbs_up / rated if rated else None

    @property
    def is_empty(self) -> bool:
        return not (self.conversations or self.user_messages or self.answers or self.errors_by_code)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, for :class:`~sophie_chat.models.DailyAnalytics`."""
        return {
            "conversations": self.conversations,
            "user_messages": self.user_messages,
            "answers": self.answers,
            "cache_hits": self.cache_hits,
            "fallbacks": self.fallbacks,
            "interrupted": self.interrupted,
            "failed": self.failed,
            "thumbs_up": self.thumbs_up,
            "thumbs_down": self.thumbs_down,
            "rated_conversations": self.rated_conversations,
            "satisfaction_total": self.satisfaction_total,
            "errors_by_code": self.errors_by_code,
            "model_failures": self.model_failures,
            "usage": self.usage,
            "first_token_histogram": list(self.first_token_histogram),
            "total_histogram": list(self.total_histogram),
            "first_token": [self.first_token.p50, self.first_token.p95],
            "total": [self.total.p50, self.total.p95],
        }

    @classmethod
    def from_dict(cls, day: date, data: dict[str, Any]) -> DayFigures:
        def histogram(name: str) -> tuple[int, ...]:
            values = tuple(int(v) for v in data.get(name) or ())
            return values if len(values) == len(_EMPTY_HISTOGRAM) else _EMPTY_HISTOGRAM

        def percentiles(name: str) -> Percentiles:
            p50, p95 = [*list(data.get(name) or []), None, None][:2]
            return Percentiles(p50, p95)

        counters = {
            name: int(data.get(name) or 0)
            for name in (
                "conversations", "user_messages", "answers", "cache_hits", "fallbacks",
                "interrupted", "failed", "thumbs_up", "thumbs_down", "rated_conversations",
                "satisfaction_total",
            )
        }  # fmt: skip
        return cls(
            day=day,
            **counters,
            errors_by_code=dict(data.get("errors_by_code") or {}),
            model_failures=dict(data.get("model_failures") or {}),
            usage={k: dict(v) for k, v in (data.get("usage") or {}).items()},
            first_token_histogram=histogram("first_token_histogram"),
            total_histogram=histogram("total_histogram"),
            first_token=percentiles("first_token"),
            total=percentiles("total"),
            frozen=True,
        )


@dataclass(frozen=True, slots=True)
class ModelUsage:
    """Tokens and estimated cost of one model over a period (cost None: no price set)."""

    model: str
    answers: int
    prompt_tokens: int
    completion_tokens: int
    cost: Decimal | None


@dataclass(frozen=True)
class Summary:
    """A period's figures: every day in it, their totals, usage and cost by model."""

    start: date
    end: date
    days: tuple[DayFigures, ...]
    totals: DayFigures
    usage: tuple[ModelUsage, ...]
    cost: Decimal | None
    currency: str
    #: Open unanswered questions last asked in the period.
    unanswered: int
    frozen_days: int


@dataclass(frozen=True, slots=True)
class TopQuestion:
    text: str
    count: int


@dataclass(frozen=True, slots=True)
class RatedAnswer:
    """A down-rated answer, with the question it answered."""

    message_id: str
    session_id: str
    question: str
    answer: str
    comment: str
    rated_at: datetime
    model: str


@dataclass(frozen=True, slots=True)
class Unanswered:
    pk: int
    question: str
    locale: str
    count: int
    reason: str
    last_asked_at: datetime


@dataclass(frozen=True, slots=True)
class ToolUsage:
    """One tool's calls in a period: how many, how they ended, how visitors answered."""

    name: str
    calls: int
    ok: int
    #: Ended in ``error`` or ``timeout``.
    failed: int
    refused: int
    accepted: int
    declined: int
    expired: int


# -- percentiles -----------------------------------------------------------------------


def percentile(sorted_values: list[int], p: float) -> int | None:
    """The nearest-rank percentile of sorted values (None when empty)."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def _percentiles(values: list[int]) -> Percentiles:
    ordered = sorted(values)
    return Percentiles(percentile(ordered, 50), percentile(ordered, 95))


def histogram(values: Iterable[int]) -> tuple[int, ...]:
    """Counts per :data:`LATENCY_BUCKETS_MS` bucket (value <= bound), and one above."""
    counts = [0] * len(_EMPTY_HISTOGRAM)
    for value in values:
        index = next(
            (i for i, bound in enumerate(LATENCY_BUCKETS_MS) if value <= bound),
            len(LATENCY_BUCKETS_MS),
        )
        counts[index] += 1
    return tuple(counts)


def histogram_percentile(counts: tuple[int, ...], p: float) -> int | None:
    """A percentile estimated from histogram counts, interpolating within the bucket."""
    total = sum(counts)
    if not total:
        return None
    rank = max(1, math.ceil(p / 100 * total))
    seen = 0
    for index, count in enumerate(counts):
        if seen + count >= rank:
            if index == len(LATENCY_BUCKETS_MS):
                return LATENCY_BUCKETS_MS[-1]
            low = LATENCY_BUCKETS_MS[index - 1] if index else 0
            high = LATENCY_BUCKETS_MS[index]
            return round(low + (high - low) * (rank - seen) / count)
        seen += count
    return LATENCY_BUCKETS_MS[-1]


def _add_histograms(*histograms: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(sum(column) for column in zip(*histograms, strict=True))


# -- cost ---------------------------------------------------------------------------------


def price_of(model: str) -> dict[str, Decimal] | None:
    """``{"input": ..., "output": ...}`` per 1M tokens for a model, from ``MODEL_PRICES``.

    The longest configured name that is the model's name or starts it wins,
    so ``"gpt-4o-mini"`` prices ``"gpt-4o-mini-2024-07-18"``.
    """
    prices = conf.get("MODEL_PRICES") or {}
    names = [name for name in prices if model == name or model.startswith(f"{name}-")]
    if not names:
        return None
    price = prices[max(names, key=len)]
    return {kind: Decimal(str(price.get(kind, 0))) for kind in ("input", "output")}


def cost_of(model: str, prompt_tokens: int, completion_tokens: int) -> Decimal | None:
    """Estimated cost at today's ``MODEL_PRICES``, or None when the model has no price."""
    price = price_of(model)
    if price is None:
        return None
    return (prompt_tokens * price["input"] + completion_tokens * price["output"]) / 1_000_000


# -- counting ------------------------------------------------------------------------------


def _bounds(start: date, end: date) -> tuple[datetime, datetime]:
    tz = timezone.get_current_timezone()
    return (
        timezone.make_aware(datetime.combine(start, time.min), tz),
        timezone.make_aware(datetime.combine(end + timedelta(days=1), time.min), tz),
    )


def _truthy(value: Any) -> bool:
    # A JSON true read as text: "true" on PostgreSQL, 1 on SQLite.
    return value in (True, 1, "1", "true", "True")


def _days(start: date, end: date) -> Iterator[date]:
    day = start
    while day <= end:
        yield day
        day += timedelta(days=1)


class _Day:
    """A day being counted."""

    def __init__(self) -> None:
        self.counters: Counter[str] = Counter()
        self.errors_by_code: Counter[str] = Counter()
        self.model_failures: Counter[str] = Counter()
        self.usage: dict[str, Counter[str]] = {}
        self.first_token: list[int] = []
        self.total: list[int] = []

    def freeze(self, day: date) -> DayFigures:
        return DayFigures(
            day=day,
            **self.counters,
            errors_by_code=dict(self.errors_by_code),
            model_failures=dict(self.model_failures),
            usage={model: dict(usage) for model, usage in self.usage.items()},
            first_token_histogram=histogram(self.first_token),
            total_histogram=histogram(self.total),
            first_token=_percentiles(self.first_token),
            total=_percentiles(self.total),
        )


def _count(start: date, end: date) -> tuple[dict[date, DayFigures], list[int], list[int]]:
    """Days of [start, end] that have data, counted from stored rows; and the raw latencies."""
    tz = timezone.get_current_timezone()
    since, until = _bounds(start, end)
    days: dict[date, _Day] = {}

    def at(day: date) -> _Day:
        return days.setdefault(day, _Day())

    by_day = TruncDate("created_at", tzinfo=tz)
    sessions = (
        ChatSession.objects.filter(created_at__gte=since, created_at__lt=until)
        .annotate(day=by_day)
        .values("day")
        .annotate(n=Count("pk"), rated=Count("satisfaction_score"), score=Sum("satisfaction_score"))
        .order_by()
    )
    for row in sessions:
        counters = at(row["day"]).counters
        counters["conversations"] += row["n"]
        counters["rated_conversations"] += row["rated"]
        counters["satisfaction_total"] += row["score"] or 0

    messages = ChatMessage.objects.filter(created_at__gte=since, created_at__lt=until)
    questions = (
        messages.filter(role=ChatMessage.Role.USER)
        .annotate(day=by_day)
        .values("day")
        .annotate(n=Count("pk"))
        .order_by()
    )
    for row in questions:
        at(row["day"]).counters["user_messages"] += row["n"]

    answers = messages.filter(role=ChatMessage.Role.ASSISTANT).annotate(
        day=by_day,
        model=KT("metadata__model"),
        cached=KT("metadata__cached"),
        fallback=KT("metadata__fallback"),
        error=KT("metadata__error"),
    )
    grouped = (
        answers.values("day", "model", "cached", "fallback", "error", "status")
        .annotate(n=Count("pk"), prompt=Sum("prompt_tokens"), completion=Sum("completion_tokens"))
        .order_by()
    )
    for row in grouped:
        day = at(row["day"])
        n = row["n"]
        day.counters["answers"] += n
        if _truthy(row["cached"]):
            day.counters["cache_hits"] += n
        if _truthy(row["fallback"]):
            day.counters["fallbacks"] += n
        if row["status"] == ChatMessage.Status.INTERRUPTED:
            day.counters["interrupted"] += n
        elif row["status"] == ChatMessage.Status.FAILED:
            day.counters["failed"] += n
        if row["error"]:
            day.model_failures[str(row["error"])] += n
        usage = day.usage.setdefault(str(row["model"] or "unknown"), Counter())
        usage["answers"] += n
        usage["prompt_tokens"] += row["prompt"] or 0
        usage["completion_tokens"] += row["completion"] or 0

    # Latency of answers the model (or a fallback) gave: cache hits would hide it.
    first_token: list[int] = []
    total: list[int] = []
    timings = answers.values_list("day", "cached", "status", "first_token_ms", "total_ms")
    for day_value, cached, status, first_ms, total_ms in timings.order_by().iterator():
        if _truthy(cached):
            continue
        day = at(day_value)
        if first_ms is not None:
            day.first_token.append(first_ms)
            first_token.append(first_ms)
        if total_ms is not None and status == ChatMessage.Status.COMPLETE:
            day.total.append(total_ms)
            total.append(total_ms)

    feedback = (
        MessageFeedback.objects.filter(
            message__created_at__gte=since, message__created_at__lt=until
        )
        .annotate(day=TruncDate("message__created_at", tzinfo=tz))
        .values("day", "rating")
        .annotate(n=Count("pk"))
        .order_by()
    )
    for row in feedback:
        if row["rating"] in (MessageFeedback.Rating.UP, MessageFeedback.Rating.DOWN):
            at(row["day"]).counters[f"thumbs_{row['rating']}"] += row["n"]

    errors = (
        ChatErrorEvent.objects.filter(created_at__gte=since, created_at__lt=until)
        .annotate(day=by_day)
        .values("day", "code")
        .annotate(n=Count("pk"))
        .order_by()
    )
    for row in errors:
        at(row["day"]).errors_by_code[row["code"]] += row["n"]

    return {day: counted.freeze(day) for day, counted in days.items()}, first_token, total


def _sum(start: date, days: list[DayFigures], first: Percentiles, total: Percentiles) -> DayFigures:
    counters: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    failures: Counter[str] = Counter()
    usage: dict[str, Counter[str]] = {}
    for day in days:
        for name in (
            "conversations", "user_messages", "answers", "cache_hits", "fallbacks",
            "interrupted", "failed", "thumbs_up", "thumbs_down", "rated_conversations",
            "satisfaction_total",
        ):  # fmt: skip
            counters[name] += getattr(day, name)
        errors.update(day.errors_by_code)
        failures.update(day.model_failures)
        for model, counts in day.usage.items():
            usage.setdefault(model, Counter()).update(counts)
    return DayFigures(
        day=start,
        **counters,
        errors_by_code=dict(errors.most_common()),
        model_failures=dict(failures.most_common()),
        usage={model: dict(counts) for model, counts in usage.items()},
        first_token_histogram=_add_histograms(*(d.first_token_histogram for d in days)),
        total_histogram=_add_histograms(*(d.total_histogram for d in days)),
        first_token=first,
        total=total,
    )


def summarize(start: date, end: date) -> Summary:
    """The figures of every day from ``start`` to ``end`` (both included) and their totals."""
    if end < start:
        raise ValueError("end is before start")
    frozen = {
        row.day: DayFigures.from_dict(row.day, row.figures)
        for row in DailyAnalytics.objects.filter(day__gte=start, day__lte=end)
    }
    open_days = [day for day in _days(start, end) if day not in frozen]
    counted: dict[date, DayFigures] = {}
    first_values: list[int] = []
    total_values: list[int] = []
    if open_days:
        counted, first_values, total_values = _count(open_days[0], open_days[-1])
    days = [frozen.get(day) or counted.get(day) or DayFigures(day=day) for day in _days(start, end)]

    if not frozen:
        first, total = _percentiles(first_values), _percentiles(total_values)
    else:
        first_hist = _add_histograms(*(d.first_token_histogram for d in days))
        total_hist = _add_histograms(*(d.total_histogram for d in days))
        first = Percentiles(
            histogram_percentile(first_hist, 50), histogram_percentile(first_hist, 95), True
        )
        total = Percentiles(
            histogram_percentile(total_hist, 50), histogram_percentile(total_hist, 95), True
        )
    totals = _sum(start, days, first, total)

    usage = tuple(
        ModelUsage(
            model=model,
            answers=counts.get("answers", 0),
            prompt_tokens=counts.get("prompt_tokens", 0),
            completion_tokens=counts.get("completion_tokens", 0),
            cost=cost_of(model, counts.get("prompt_tokens", 0), counts.get("completion_tokens", 0)),
        )
        for model, counts in sorted(totals.usage.items(), key=lambda item: -item[1]["answers"])
    )
    priced = [u.cost for u in usage if u.cost is not None]
    since, until = _bounds(start, end)
    return Summary(
        start=start,
        end=end,
        days=tuple(days),
        totals=totals,
        usage=usage,
        cost=sum(priced, Decimal(0)) if priced else None,
        currency=conf.get("COST_CURRENCY"),
        unanswered=UnansweredQuestion.objects.filter(
            resolved=False, last_asked_at__gte=since, last_asked_at__lt=until
        ).count(),
        frozen_days=len(frozen),
    )


# -- lists ------------------------------------------------------------------------------------


def top_questions(start: date, end: date, limit: int = 10) -> list[TopQuestion]:
    """The questions asked most often in the period (by their normalized text).

    Reads the latest :data:`TOP_QUESTIONS_SAMPLE` questions of the period;
    each is shown in its most recent wording.
    """
    since, until = _bounds(start, end)
    recent = (
        ChatMessage.objects.filter(
            role=ChatMessage.Role.USER, created_at__gte=since, created_at__lt=until
        )
        .order_by("-created_at")
        .values_list("content", flat=True)[:TOP_QUESTIONS_SAMPLE]
    )
    counts: Counter[str] = Counter()
    wording: dict[str, str] = {}
    for content in recent:
        key = normalize_question(content)
        if not key:
            continue
        counts[key] += 1
        wording.setdefault(key, content.strip())
    return [TopQuestion(wording[key], count) for key, count in counts.most_common(limit)]


def worst_rated_answers(start: date, end: date, limit: int = 10) -> list[RatedAnswer]:
    """Answers given in the period that visitors rated down, latest rating first."""
    since, until = _bounds(start, end)
    rows = (
        MessageFeedback.objects.filter(
            rating=MessageFeedback.Rating.DOWN,
            message__created_at__gte=since,
            message__created_at__lt=until,
        )
        .select_related("message", "message__reply_to")
        .order_by("-updated_at")[:limit]
    )
    return [
        RatedAnswer(
            message_id=str(row.message_id),
            session_id=str(row.message.session_id),
            question=row.message.reply_to.content if row.message.reply_to else "",
            answer=row.message.content,
            comment=row.comment,
            rated_at=row.updated_at,
            model=str((row.message.metadata or {}).get("model") or ""),
        )
        for row in rows
    ]


def unanswered_questions(start: date, end: date, limit: int = 10) -> list[Unanswered]:
    """Open unanswered questions last asked in the period, most asked first."""
    since, until = _bounds(start, end)
    rows = UnansweredQuestion.objects.filter(
        resolved=False, last_asked_at__gte=since, last_asked_at__lt=until
    ).order_by("-count", "-last_asked_at")[:limit]
    return [
        Unanswered(
            pk=row.pk,
            question=row.question,
            locale=row.locale,
            count=row.count,
            reason=row.get_reason_display(),
            last_asked_at=row.last_asked_at,
        )
        for row in rows
    ]


def tool_usage(start: date, end: date) -> list[ToolUsage]:
    """Each tool's calls made in the period (of conversations still kept), most called first."""
    since, until = _bounds(start, end)
    status, confirmation = ToolCall.Status, ToolCall.Confirmation
    rows = (
        ToolCall.objects.filter(created_at__gte=since, created_at__lt=until)
        .values("name")
        .annotate(
            calls=Count("pk"),
            ok=Count("pk", filter=Q(status=status.OK)),
            failed=Count("pk", filter=Q(status__in=[status.ERROR, status.TIMEOUT])),
            refused=Count("pk", filter=Q(status=status.REFUSED)),
            accepted=Count("pk", filter=Q(confirmation=confirmation.ACCEPTED)),
            declined=Count("pk", filter=Q(confirmation=confirmation.DECLINED)),
            expired=Count("pk", filter=Q(confirmation=confirmation.EXPIRED)),
        )
        .order_by("-calls", "name")
    )
    return [ToolUsage(**row) for row in rows]


@dataclass(frozen=True, slots=True)
class HandoffFigures:
    """Handoffs to a person asked for in a period (docs/handoff.md, "Operations").

    Waits run from the request to the claim, first replies from the request
    to the agent's first message; in seconds.
    """

    requested: int
    #: Claimed by an agent (``active`` now, or ``ended``).
    taken: int
    #: Ended by the agent after a conversation: resolved by a person.
    resolved: int
    #: Nobody claimed it within ``WAIT_TIMEOUT``.
    abandoned: int
    cancelled: int
    #: Asked out of business hours.
    unavailable: int
    wait: Percentiles
    first_reply: Percentiles
    #: The visitors' average rating of the person (1 to 5), and how many rated.
    satisfaction: float | None
    rated: int

    @property
    def is_empty(self) -> bool:
        return not self.requested


def handoff_figures(start: date, end: date) -> HandoffFigures:
    """The handoffs asked for in the period (of conversations still kept)."""
    since, until = _bounds(start, end)
    state = Handoff.State
    rows = Handoff.objects.filter(requested_at__gte=since, requested_at__lt=until)
    counts = rows.aggregate(
        requested=Count("pk"),
        taken=Count("pk", filter=Q(claimed_at__isnull=False)),
        resolved=Count("pk", filter=Q(state=state.ENDED)),
        abandoned=Count("pk", filter=Q(state=state.ABANDONED)),
        cancelled=Count("pk", filter=Q(state=state.CANCELLED)),
        unavailable=Count("pk", filter=Q(state=state.UNAVAILABLE)),
        rated=Count("satisfaction_score"),
        score_sum=Sum("satisfaction_score"),
    )
    waits, replies = [], []
    for requested, claimed, replied in rows.values_list(
        "requested_at", "claimed_at", "first_reply_at"
    ):
        if claimed is not None:
            waits.append(round((claimed - requested).total_seconds()))
        if replied is not None:
            replies.append(round((replied - requested).total_seconds()))
    score_sum, rated = counts.pop("score_sum"), counts["rated"]
    return HandoffFigures(
        **counts,
        wait=_percentiles(waits),
        first_reply=_percentiles(replies),
        satisfaction=round(score_sum / rated, 2) if rated else None,
    )


# -- freezing -----------------------------------------------------------------------------


def freeze_days_through(last_day: date) -> int:
    """Freeze every day up to ``last_day`` that has data and no frozen row yet.

    Retention calls this before deleting conversations, so that the
    dashboard keeps the figures of days whose conversations are gone. Safe
    to run concurrently (a day frozen twice keeps the first row). Returns
    how many days were frozen.
    """
    firsts = [
        model.objects.aggregate(first=Min("created_at"))["first"]
        for model in (ChatSession, ChatMessage, ChatErrorEvent)
    ]
    known = [timezone.localdate(value) for value in firsts if value is not None]
    if not known or min(known) > last_day:
        return 0
    start = min(known)
    done = set(
        DailyAnalytics.objects.filter(day__gte=start, day__lte=last_day).values_list(
            "day", flat=True
        )
    )
    frozen = 0
    window = start
    while window <= last_day:
        window_end = min(window + timedelta(days=30), last_day)
        if any(day not in done for day in _days(window, window_end)):
            counted, _first, _total = _count(window, window_end)
            rows = [
                DailyAnalytics(day=day, figures=figures.as_dict())
                for day, figures in sorted(counted.items())
                if day not in done and not figures.is_empty
            ]
            DailyAnalytics.objects.bulk_create(rows, ignore_conflicts=True)
            frozen += len(rows)
        window = window_end + timedelta(days=1)
    return frozen
