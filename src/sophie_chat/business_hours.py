"""Business hours of the team that takes conversations over (docs/handoff.md).

``HANDOFF["HOURS"]`` maps weekday names (``"mon"`` ... ``"sun"``) to lists
of ``("HH:MM", "HH:MM")`` periods in ``HANDOFF["TIMEZONE"]`` (the site's
``TIME_ZONE`` when None); ``"24:00"`` ends a period at midnight. An empty
``HOURS`` means always open. ``HANDOFF["HOLIDAYS"]`` lists ISO dates
(``"2026-12-25"``) on which the team is out all day.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Iterator

from django.conf import settings
from django.utils import timezone

from sophie_chat import conf

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
#: How far ahead the next opening is looked for.
LOOKAHEAD_DAYS = 31


def parse_time(value: str) -> dt.timedelta:
    """``"HH:MM"`` as the time since midnight; ``"24:00"`` is the end of the day.

    Raises ``ValueError`` for anything else.
    """
    hours, sep, minutes = str(value).partition(":")
    if not (sep and hours.isdigit() and minutes.isdigit() and len(minutes) == 2):
        raise ValueError(f"{value!r} is not HH:MM")
    since = dt.timedelta(hours=int(hours), minutes=int(minutes))
    if int(minutes) >= 60 or since > dt.timedelta(hours=24):
        raise ValueError(f"{value!r} is not a time of day")
    return since


def zone() -> dt.tzinfo:
    """``HANDOFF["TIMEZONE"]``, else the site's ``TIME_ZONE``."""
    name = conf.get("HANDOFF")["TIMEZONE"] or settings.TIME_ZONE or "UTC"
    return zoneinfo.ZoneInfo(name)


def holidays() -> set[dt.date]:
    return {dt.date.fromisoformat(day) for day in conf.get("HANDOFF")["HOLIDAYS"]}


def _periods(start: dt.datetime) -> Iterator[tuple[dt.datetime, dt.datetime]]:
    """The opening periods from ``start``'s local day on, in order, as aware datetimes."""
    hours = conf.get("HANDOFF")["HOURS"]
    tz = zone()
    day = start.astimezone(tz).date()
    closed = holidays()
    for offset in range(LOOKAHEAD_DAYS + 1):
        date = day + dt.timedelta(days=offset)
        if date in closed:
            continue
        midnight = dt.datetime.combine(date, dt.time(), tz)
        for begin, end in sorted(hours.get(WEEKDAYS[date.weekday()], ()), key=lambda p: p[0]):
            # Local wall-clock times: a period keeps its hours across a DST change.
            yield (
                _local(midnight, parse_time(begin), tz),
                _local(midnight, parse_time(end), tz),
            )


def _local(midnight: dt.datetime, since: dt.timedelta, tz: dt.tzinfo) -> dt.datetime:
    naive = midnight.replace(tzinfo=None) + since
    return naive.replace(tzinfo=tz)


def is_open_now(now: dt.datetime | None = None) -> tuple[bool, dt.datetime | None]:
    """``(True, None)`` within business hours; else ``(False, opens_at)``.

    ``opens_at`` is the start of the next period (None when there is none in
    the next :data:`LOOKAHEAD_DAYS` days). Always open when ``HOURS`` is empty.
    """
    now = now or timezone.now()
    if not conf.get("HANDOFF")["HOURS"]:
        return True, None
    for begin, end in _periods(now):
        if begin <= now < end:
            return True, None
        if begin > now:
            return False, begin
    return False, None


def next_opening(now: dt.datetime | None = None) -> dt.datetime | None:
    """The start of the next period after ``now`` (the next shift when open now)."""
    now = now or timezone.now()
    return next((begin for begin, _end in _periods(now) if begin > now), None)
