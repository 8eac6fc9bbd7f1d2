"""Misconfigured tools, one per system check (tests/tools/test_checks.py)."""

from __future__ import annotations

from sophie_chat.tools import tool


class Opaque:
    """A type pydantic has no schema for."""


@tool
def add(a: int) -> int:
    """A second tool named add."""
    return a


@tool(name="bad name!")
def badly_named() -> str:
    """A name with a space."""
    return ""


@tool(permission="bookings.change_booking")
def unknown_permission() -> str:
    """Needs a permission no installed model defines."""
    return ""


@tool
def opaque_argument(value: Opaque) -> str:
    """Takes what pydantic cannot describe."""
    return ""


@tool(confirm=True, summary="Move booking {booking} to {day}")
def bad_summary(booking_id: int, day: str) -> str:
    """Its summary names an argument it does not have."""
    return ""


@tool(allowed=True)  # type: ignore[arg-type]
def allowed_not_callable() -> str:
    """Its allowed is not a function."""
    return ""


@tool
def undescribed() -> str:
    return ""


@tool(confirm=True)
def unsummarised() -> str:
    """Confirmed, but with nothing to show the visitor."""
    return ""
