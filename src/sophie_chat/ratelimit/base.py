"""The rate limiter contract.

A limiter answers :meth:`BaseRateLimiter.hit` for a key (``user:42``,
``session:<uuid>``, ``ip:203.0.113.9``) with a :class:`Decision`. Subclasses
take keyword-only options and implement :meth:`~BaseRateLimiter.hit`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from django.core.checks import CheckMessage


@dataclass(frozen=True, slots=True)
class Decision:
    """The limiter's answer for one hit.

    ``retry_after`` is the number of whole seconds after which a refused key
    may try again (0 when allowed).
    """

    allowed: bool
    remaining: int
    retry_after: int = 0


class RateLimiterUnavailable(Exception):
    """The limiter's storage could not be reached."""


class BaseRateLimiter:
    """Base class of rate limiters."""

    #: Counters are shared by every server process (so limits hold site-wide).
    shared_between_processes: bool = False

    async def hit(self, key: str) -> Decision:
        """Count one message for ``key`` and say whether it is allowed.

        Raises :class:`RateLimiterUnavailable` when the counters cannot be reached.
        """
        raise NotImplementedError

    async def clear(self, key: str) -> None:
        """Forget ``key``'s counters (an admin "unblock")."""
        raise NotImplementedError

    def check(self, setting: str = "RATE_LIMIT") -> Sequence[CheckMessage]:
        """System check messages about this limiter's configuration."""
        return []


class WindowedRateLimiter(BaseRateLimiter):
    """Base of the built-in limiters: ``rate`` and ``burst`` as fixed windows of ``limits``.

    ``rate`` is the sustained rate (``"10/m"``); ``burst`` allows at most that
    many messages within ``burst`` rate intervals (10/m with burst 3: at most 3
    within 18 s). Subclasses provide :attr:`strategy`, a ``limits`` async
    ``FixedWindowRateLimiter`` over their storage.
    """

    def __init__(self, *, rate: str, burst: int | None) -> None:
        from limits import RateLimitItemPerSecond

        from sophie_chat.ratelimit.rates import parse_rate

        self.rate = parse_rate(rate)
        if burst is not None and (
            isinstance(burst, bool) or not isinstance(burst, int) or burst < 0
        ):
            raise ValueError(f"burst must be a positive whole number or None, not {burst!r}")
        self.limits = [self.rate]
        if burst and burst < self.rate.amount:
            span = math.ceil(self.rate.get_expiry() / self.rate.amount * burst)
            self.limits.append(RateLimitItemPerSecond(burst, span))

    @property
    def strategy(self) -> Any:
        raise NotImplementedError

    async def hit(self, key: str) -> Decision:
        try:
            allowed = True
            remaining = self.rate.amount
            retry_after = 0
            for item in self.limits:
                ok = await self.strategy.hit(item, key)
                stats = await self.strategy.get_window_stats(item, key)
                remaining = min(remaining, stats.remaining)
                if not ok:
                    allowed = False
                    retry_after = max(retry_after, math.ceil(stats.reset_time - time.time()), 1)
        except Exception as exc:
            raise RateLimiterUnavailable(str(exc)) from exc
        return Decision(allowed=allowed, remaining=remaining, retry_after=retry_after)

    async def clear(self, key: str) -> None:
        for item in self.limits:
            await self.strategy.clear(item, key)
