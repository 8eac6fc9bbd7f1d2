"""A host context provider: a logged-in client's upcoming bookings.

Listed in ``SOPHIE_CHAT["CONTEXT_PROVIDERS"]`` (demo/settings.py), it runs
on every question a logged-in visitor asks, so Sophie can answer "when is
my cleaning?" or "can I still cancel tomorrow's visit?" about *their*
bookings. It is async (one query, no thread hop), returns nothing for
anonymous visitors and providers, and gives only the facts the assistant
needs: no address, no other client's data. The section is private, so the
answers are never shared through the response cache.
"""

from __future__ import annotations

from django.utils import timezone
from django.utils.formats import date_format

from sophie_chat.context import ContextRequest, ContextSection

#: How many upcoming bookings the assistant is told about.
LIMIT = 3


async def upcoming_bookings(request: ContextRequest) -> ContextSection | None:
    """The visitor's next bookings, soonest first, or None when there is nothing to say."""
    if not request.user_id or request.user_type != "client":
        return None
    from demo.models import Booking

    bookings = (
        Booking.objects.filter(client_id=request.user_id, starts_at__gte=timezone.now())
        .exclude(status=Booking.Status.CANCELLED)
        .order_by("starts_at")[:LIMIT]
    )
    facts = {}
    async for number, booking in _numbered(bookings):
        when = date_format(timezone.localtime(booking.starts_at), "DATETIME_FORMAT")
        with_whom = f" with {booking.provider_name}" if booking.provider_name else ""
        facts[f"booking {number}"] = (
            f"{booking.service} on {when}{with_whom} ({booking.get_status_display()})"
        )
    if not facts:
        facts["bookings"] = "none upcoming"
    return ContextSection("upcoming bookings", facts, private=True)


async def _numbered(queryset):  # type: ignore[no-untyped-def]
    number = 0
    async for item in queryset:
        number += 1
        yield number, item
