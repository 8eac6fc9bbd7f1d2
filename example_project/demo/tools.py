"""Casa Pronta's tools: what Sophie can look up and change for a visitor.

Listed in ``SOPHIE_CHAT["TOOLS"]`` (demo/settings.py) when a model is
configured; the offline answer engine calls no tools. Who may use a tool is
the decorator's business (``requires_login``); *whose* bookings a tool reads
or changes is the tool's: every query filters by ``context.user``, so a
booking id the model made up, or one of another client's, is simply not
found. The two tools that change a booking ask the visitor to confirm first.
"""

from __future__ import annotations

import datetime
from decimal import Decimal
from typing import Annotated, Any

from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from pydantic import Field

from demo.models import Booking, Service
from sophie_chat.tools import ToolContext, ToolError, tool

#: The cancellation policy (knowledge/home_services.json says the same):
#: free up to this many hours before the visit, then a share of the price.
FREE_CANCELLATION_HOURS = 24
LATE_CANCELLATION_FEE = Decimal("0.30")
#: Visits start between these hours, local time.
OPENING_HOURS = (7, 20)


def _money(value: Decimal) -> str:
    return f"R$ {value:.2f}"


def cancellation_fee(booking: Booking, now: datetime.datetime) -> Decimal:
    """What cancelling ``booking`` at ``now`` costs under the policy."""
    if booking.starts_at - now >= datetime.timedelta(hours=FREE_CANCELLATION_HOURS):
        return Decimal("0.00")
    return (booking.price * LATE_CANCELLATION_FEE).quantize(Decimal("0.01"))


def _upcoming(context: ToolContext):  # type: ignore[no-untyped-def]
    # Ownership: only this visitor's bookings, whatever the model asked for.
    return Booking.objects.filter(client_id=context.user.pk, starts_at__gte=timezone.now()).exclude(
        status=Booking.Status.CANCELLED
    )


def _own_booking(context: ToolContext, booking_id: int) -> Booking:
    booking = _upcoming(context).filter(pk=booking_id).first()
    if booking is None:
        raise ToolError(f"The visitor has no upcoming booking {booking_id}; see my_bookings.")
    return booking


def _describe(booking: Booking, now: datetime.datetime) -> dict[str, Any]:
    return {
        "id": booking.pk,
        "service": booking.service,
        "starts_at": timezone.localtime(booking.starts_at).isoformat(timespec="minutes"),
        "provider": booking.provider_name or None,
        "status": booking.status,
        "price": _money(booking.price),
        "cancellation_fee_now": _money(cancellation_fee(booking, now)),
    }


@tool(label=_("Looking through our services…"))
def search_services(
    query: Annotated[str, Field(max_length=100)] = "", *, context: ToolContext
) -> list[dict[str, Any]]:
    """Casa Pronta's services with their starting prices in reais, and their pages.

    Args:
        query: Words to look for in the service's name or description; empty for all services.
    """
    portuguese = context.locale.lower().startswith("pt")
    services = Service.objects.all()
    words = [word for word in query.split() if len(word) >= 3]
    if words:
        match = Q()
        for word in words:
            for field in ("name", "name_pt_br", "summary", "summary_pt_br"):
                match |= Q(**{f"{field}__icontains": word})
        # Nothing matching: the whole catalog, so the model can still point somewhere.
        services = services.filter(match) or Service.objects.all()
    return [
        {
            "service": service.name_pt_br if portuguese else service.name,
            "description": service.summary_pt_br if portuguese else service.summary,
            "price_from": _money(service.price),
            "page": f"/services/{service.slug}/",
        }
        for service in services
    ]


@tool(requires_login=True, label=_("Looking up your bookings…"))
def my_bookings(*, context: ToolContext) -> list[dict[str, Any]]:
    """The logged-in visitor's upcoming bookings, soonest first.

    Each has its id (for reschedule_booking and cancel_booking), service,
    start (local time), provider, status, price, and the fee cancelling it
    now would cost.
    """
    now = timezone.now()
    return [_describe(booking, now) for booking in _upcoming(context)]


@tool(
    requires_login=True,
    confirm=True,
    summary=_("Move booking {booking_id} to {new_start}"),
    label=_("Moving your booking…"),
)
def reschedule_booking(
    booking_id: int, new_start: datetime.datetime, *, context: ToolContext
) -> dict[str, Any]:
    """Move one of the visitor's upcoming bookings to another day and time.

    Free up to 24 hours before the visit; visits start between 07:00 and 20:00.

    Args:
        booking_id: The booking's id, from my_bookings.
        new_start: The new date and time, local time (YYYY-MM-DDTHH:MM).
    """
    now = timezone.now()
    booking = _own_booking(context, booking_id)
    if booking.starts_at - now < datetime.timedelta(hours=FREE_CANCELLATION_HOURS):
        raise ToolError(
            "Less than 24 hours before the visit: it cannot be moved in the chat; "
            "the visitor should contact the provider."
        )
    if timezone.is_naive(new_start):
        new_start = timezone.make_aware(new_start)
    local = timezone.localtime(new_start)
    if new_start <= now + datetime.timedelta(hours=FREE_CANCELLATION_HOURS):
        raise ToolError("The new time must be more than 24 hours from now.")
    if not OPENING_HOURS[0] <= local.hour < OPENING_HOURS[1]:
        raise ToolError("Visits start between 07:00 and 20:00 local time.")
    booking.starts_at = new_start
    booking.save(update_fields=["starts_at"])
    return _describe(booking, now)


@tool(
    requires_login=True,
    confirm=True,
    summary=_(
        "Cancel booking {booking_id}. Free up to 24 hours before the visit; "
        "later, a fee of 30% of its price."
    ),
    label=_("Cancelling your booking…"),
)
def cancel_booking(booking_id: int, *, context: ToolContext) -> dict[str, Any]:
    """Cancel one of the visitor's upcoming bookings, applying the cancellation policy.

    Free more than 24 hours before the visit; later, a fee of 30% of the
    price. Tell the visitor the fee (my_bookings shows it) before calling.

    Args:
        booking_id: The booking's id, from my_bookings.
    """
    now = timezone.now()
    booking = _own_booking(context, booking_id)
    fee = cancellation_fee(booking, now)
    booking.status = Booking.Status.CANCELLED
    booking.save(update_fields=["status"])
    return {"id": booking.pk, "cancelled": True, "fee": _money(fee)}
