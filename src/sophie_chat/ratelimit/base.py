"""The rate limiter contract, and the allowance both built-in limiters count with.

A limiter answers :meth:`BaseRateLimiter.hit` for a key (``user:42``,
``session:<uuid>``, ``ip:203.0.113.9``) with a :class:`Decision`. Subclasses
take keyword-only options and implement :meth:`~BaseRateLimiter.hit`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from django.core.checks import CheckMessage

# Float arithmetic on epoch seconds: a message exactly at the moment its
# allowance comes back must not be refused for a rounding error.
EPSILON = 1e-6


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


@dataclass(frozen=True, slots=True)
class Allowance:
    """A token bucket: ``capacity`` messages in a row, one back every ``interval`` seconds.

    Kept as one number per key, the *theoretical arrival time* (``tat``) of
    the generic cell rate algorithm: the moment at which the allowance will
    be full again. A message is allowed when at least one message of
    allowance is left, and then moves ``tat`` one interval later; a refused
    message changes nothing. A key whose ``tat`` is in the past (or that is
    missing) has its whole allowance.
    """

    interval: float
    capacity: int

    def take(self, tat: float | None, now: float) -> tuple[Decision, float | None]:
        """The decision for a message at ``now``, and the new ``tat`` to store (None: refused)."""
        start = now if tat is None or tat < now else tat
        # How far ahead of "full" the bucket would be after this message.
        ahead = start + self.interval - now
        if ahead > self.capacity * self.interval + EPSILON:
            wait = ahead - self.capacity * self.interval
            return Decision(False, 0, max(math.ceil(wait - EPSILON), 1)), None
        remaining = math.floor((self.capacity * self.interval - ahead) / self.interval + EPSILON)
        return Decision(True, remaining), start + self.interval

    def lifetime(self, tat: float, now: float) -> int:
        """Whole seconds a stored ``tat`` matters: after that the allowance is full anyway."""
        return max(math.ceil(tat - now), 0) + 1


class TokenBucketRateLimiter(BaseRateLimiter):
    """Base of the built-in limiters: ``rate`` and ``burst`` as a token bucket.

    ``rate`` (``"10/m"``) is how fast a visitor's allowance comes back: one
    message every ``period / amount`` seconds. ``burst`` is how many messages
    the allowance holds above the rate's amount: a visitor may send
    ``amount + burst`` messages in a row (13 with ``10/m`` and a burst of 3),
    then one per interval. Refused messages use nothing.
    """

    def __init__(self, *, rate: str, burst: int | None) -> None:
        from sophie_chat.ratelimit.rates import parse_rate

        self.rate = parse_rate(rate)
        if burst is not None and (
            isinstance(burst, bool) or not isinstance(burst, int) or burst < 0
        ):
            raise ValueError(f"burst must be a positive whole number or None, not {burst!r}")
        self.burst = burst or 0
        self.allowance = Allowance(
            interval=self.rate.get_expiry() / self.rate.amount,
            capacity=self.rate.amount + self.burst,
        )
