"""Tools the tests list in ``SOPHIE_CHAT["TOOLS"]`` (as ``tests.support.tools.<name>``).

A host's tools, in small: one that reads the visitor's own data (login
required), one that changes it after confirmation, one for staff with a
permission, and some that misbehave (raise, hang). :data:`CALLS` records
the calls made in this process.
"""

from __future__ import annotations

import asyncio
import datetime
from typing import Annotated, Literal

from django.contrib.auth import get_user_model
from django.utils.translation import gettext_lazy as _
from pydantic import Field

from sophie_chat.tools import ToolContext, ToolError, tool

#: ``(tool name, arguments)`` of every call run in this process, in order.
CALLS: list[tuple[str, dict]] = []


@tool(requires_login=True, label=_("Looking up your profile…"))
def my_profile(*, context: ToolContext) -> dict:
    """The logged-in visitor's own profile: name and e-mail."""
    CALLS.append(("my_profile", {}))
    user = context.user
    return {"username": user.get_username(), "first_name": user.first_name}


@tool(
    requires_login=True,
    confirm=True,
    summary=_("Change your first name to {first_name}"),
    redact=["first_name"],
)
def rename_me(first_name: Annotated[str, Field(max_length=30)], *, context: ToolContext) -> dict:
    """Change the logged-in visitor's first name.

    Args:
        first_name: The new first name.
    """
    CALLS.append(("rename_me", {"first_name": first_name}))
    # Ownership: the tool changes the visitor's own record, whatever the model asked.
    get_user_model().objects.filter(pk=context.user_id).update(first_name=first_name)
    return {"first_name": first_name}


@tool(permission="sophie_chat.change_knowledgebaseentry")
async def entry_count(status: Literal["active", "all"] = "all", *, context: ToolContext) -> int:
    """How many knowledge entries there are (staff only)."""
    from sophie_chat.models import KnowledgeBaseEntry

    CALLS.append(("entry_count", {"status": status}))
    entries = KnowledgeBaseEntry.objects.all()
    if status == "active":
        entries = entries.filter(active=True)
    return await entries.acount()


@tool
def add(a: int, b: int) -> int:
    """Add two whole numbers."""
    CALLS.append(("add", {"a": a, "b": b}))
    return a + b


@tool
async def next_weekday(day: datetime.date) -> str:
    """The weekday after ``day``, in English."""
    CALLS.append(("next_weekday", {"day": day}))
    return (day + datetime.timedelta(days=1)).strftime("%A")


@tool(allowed=lambda context: context.locale.startswith("pt"))
def portuguese_only() -> str:
    """Only for visitors who speak Portuguese."""
    return "olá"


@tool
def broken() -> str:
    """Always fails."""
    raise RuntimeError("the database exploded with secret details")


@tool
def refuses(reason: str) -> str:
    """Fails with a message for the model."""
    raise ToolError(f"cannot do that: {reason}")


@tool(timeout=0.2)
async def hangs() -> str:
    """Never answers in time."""
    await asyncio.sleep(60)
    return "too late"


@tool
async def pause(seconds: float) -> str:
    """Wait a moment, then say so."""
    await asyncio.sleep(seconds)
    return "done"


@tool(log_arguments=True, redact=["secret"])
def noted(value: int, secret: str) -> int:
    """Note a value (its arguments may be logged, but the secret)."""
    return value


@tool(
    confirm=True,
    summary=_("Leave the note: {note}"),
    # Offered on one page only, so servers that list it answer elsewhere as without tools.
    allowed=lambda context: str(context.page.get("page_url", "")).endswith("/tools-test/"),
)
def leave_note(note: str) -> str:
    """Leave a note for the staff (anonymous visitors too), once they confirm."""
    CALLS.append(("leave_note", {"note": note}))
    return "noted"


def not_a_tool() -> str:
    """A plain function, not decorated."""
    return ""
