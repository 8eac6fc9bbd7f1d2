"""The daily token budget: per user, and per IP address for anonymous visitors.

``DAILY_TOKEN_BUDGET_USER`` and ``DAILY_TOKEN_BUDGET_IP`` (None: no budget)
cap the model tokens (prompt and answer) one logged-in user, or all anonymous
visitors from one IP address together, may spend in a day (the site's
``TIME_ZONE``). Once spent, every message is refused with
``quota_exceeded`` before it is stored or sent to the model; answers from
the response cache cost nothing but are refused too, so the visitor hears
one consistent rule. Usage is kept in :class:`~sophie_chat.models.TokenUsage`
rows, so it holds across server processes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from sophie_chat import conf
from sophie_chat.db import database_call
from sophie_chat.exceptions import QuotaExceeded
from sophie_chat.models import TokenUsage

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Budget:
    """Who pays for a turn: ``subjects`` with their daily budgets."""

    subjects: tuple[tuple[str, int], ...]

    def __bool__(self) -> bool:
        return bool(self.subjects)


def budget_for(user_id: int | None, ip: str | None) -> Budget:
    """The budgets that apply to a visitor (none when the settings set none)."""
    if user_id is not None:
        limit = conf.get("DAILY_TOKEN_BUDGET_USER")
        return Budget(((f"user:{user_id}", limit),) if limit is not None else ())
    limit = conf.get("DAILY_TOKEN_BUDGET_IP")
    if limit is None or not ip:
        return Budget(())
    return Budget(((f"ip:{ip}", limit),))


def today() -> date:
    return timezone.localdate()


def seconds_until_tomorrow() -> int:
    now = timezone.localtime()
    midnight = datetime.combine(now.date() + timedelta(days=1), time.min, tzinfo=now.tzinfo)
    return max(1, int((midnight - now).total_seconds()) + 1)


async def remaining(budget: Budget) -> int | None:
    """Tokens left today (the smallest over the subjects), or None without a budget."""
    if not budget:
        return None
    used = await tokens_used([subject for subject, _ in budget.subjects], today())
    return min(limit - used.get(subject, 0) for subject, limit in budget.subjects)


def check(budget: Budget, left: int | None, *, reply_to: str | None) -> None:
    """Raise :class:`QuotaExceeded` when ``left`` (from :func:`remaining`) says it is spent."""
    if left is not None and left <= 0:
        logger.info(
            "Daily token budget spent",
            extra={"subjects": [subject.split(":", 1)[0] for subject, _ in budget.subjects]},
        )
        raise QuotaExceeded(retry_after=seconds_until_tomorrow(), reply_to=reply_to)


async def hold(budget: Budget, wanted: int | None) -> tuple[int | None, date]:
    """Hold up to ``wanted`` tokens (None: all that is left) of today's budget for one answer.

    Checking and holding are one locked step: parallel answers of one visitor
    cannot each spend what is left. Returns what was held (0 or less: the
    budget is spent, nothing held; None: no budget) and the day it was held
    on; :func:`settle` replaces the hold with what the answer cost.
    """
    day = today()
    if not budget:
        return None, day
    return await hold_tokens(list(budget.subjects), day, wanted), day


async def settle(budget: Budget, held: int, day: date, tokens: int) -> None:
    """Replace a hold of ``held`` tokens made on ``day`` by the ``tokens`` actually spent."""
    if budget and tokens != held:
        await add_tokens([subject for subject, _ in budget.subjects], day, tokens - held)


async def spend(budget: Budget, tokens: int) -> None:
    """Count ``tokens`` against today's budget of every subject."""
    if budget and tokens > 0:
        await add_tokens([subject for subject, _ in budget.subjects], today(), tokens)


@database_call
def tokens_used(subjects: list[str], day: date) -> dict[str, int]:
    """Tokens spent on ``day`` by each subject (``user:<pk>``, ``ip:<address>``)."""
    return dict(
        TokenUsage.objects.filter(subject__in=subjects, day=day).values_list("subject", "tokens")
    )


@database_call
def hold_tokens(subjects: list[tuple[str, int]], day: date, wanted: int | None) -> int:
    """Lock the subjects' rows of ``day``, add and return what may be held (see :func:`hold`)."""
    names = sorted(subject for subject, _ in subjects)
    for name in names:
        try:
            with transaction.atomic():
                TokenUsage.objects.get_or_create(subject=name, day=day, defaults={"tokens": 0})
        except IntegrityError:
            pass  # created by a concurrent turn in between
    with transaction.atomic():
        rows = TokenUsage.objects.select_for_update().filter(subject__in=names, day=day)
        used = dict(rows.order_by("subject").values_list("subject", "tokens"))
        left = min(limit - used.get(subject, 0) for subject, limit in subjects)
        held = left if wanted is None else min(wanted, left)
        if held > 0:
            rows.update(tokens=F("tokens") + held, updated_at=timezone.now())
        return held


@database_call
def add_tokens(subjects: list[str], day: date, tokens: int) -> None:
    """Add ``tokens`` to each subject's usage of ``day``."""
    for subject in subjects:
        rows = TokenUsage.objects.filter(subject=subject, day=day)
        if rows.update(tokens=F("tokens") + tokens, updated_at=timezone.now()):
            continue
        try:
            with transaction.atomic():
                TokenUsage.objects.create(subject=subject, day=day, tokens=tokens)
        except IntegrityError:
            # Created by a concurrent turn in between: add these tokens to it.
            rows.update(tokens=F("tokens") + tokens, updated_at=timezone.now())
