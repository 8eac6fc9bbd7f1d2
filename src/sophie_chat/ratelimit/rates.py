"""Rate strings: ``"10/m"``, ``"100/hour"``, ``"5/30s"``, ``"5 per 30 seconds"``."""

from __future__ import annotations

import re

from limits import RateLimitItem, parse

_UNIT_ABBREVIATIONS = {"s": "second", "m": "minute", "h": "hour", "d": "day"}
_SHORT_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*([smhd])\s*$")


def parse_rate(rate: str) -> RateLimitItem:
    """Parse ``"10/m"``, ``"100/hour"``, ``"5/30s"`` or ``limits``' ``"5 per 30 seconds"``."""
    if not isinstance(rate, str):
        raise ValueError(f"rate must be a string like '10/m', not {rate!r}")
    short = _SHORT_RATE.match(rate)
    if short:
        amount, multiple, unit = short.groups()
        rate = f"{amount}/{multiple or 1} {_UNIT_ABBREVIATIONS[unit]}"
    try:
        return parse(rate)
    except ValueError as exc:
        raise ValueError(f"rate {rate!r} is not a rate like '10/m' or '100/hour'") from exc
