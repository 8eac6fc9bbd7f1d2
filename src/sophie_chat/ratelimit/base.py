"""The rate limiter contract.

A limiter answers :meth:`BaseRateLimiter.hit` for a key (``user:42``,
``session:<uuid>``, ``ip:203.0.113.9``) with a :class:`Decision`. Subclasses
take keyword-only options and implement :meth:`~BaseRateLimiter.hit`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

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

        A refused hit is not counted against the key.
        """
        raise NotImplementedError

    async def clear(self, key: str) -> None:
        """Forget ``key``'s counters (an admin "unblock")."""
        raise NotImplementedError

    def check(self, setting: str = "RATE_LIMIT") -> Sequence[CheckMessage]:
        """System check messages about this limiter's configuration."""
        return []
