"""``request_handoff``: the tool a model calls to bring a person in (docs/handoff.md).

Offered with the other tools while ``HANDOFF["ENABLED"]`` is on, without
listing it in ``TOOLS``. Its result tells the model what to say: that a
person is coming (and the visitor's place in the queue), or when the team
is back and that the visitor can leave a message.
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy

from sophie_chat.handoff import service
from sophie_chat.tools.base import ToolContext, tool
from sophie_chat.tools.leads import lead_capture_available

#: Its dotted path, as ``TOOLS`` would list it.
TOOL_PATH = "sophie_chat.handoff.tools.request_handoff"


@tool(label=gettext_lazy("Calling a person from our team…"))
async def request_handoff(reason: str = "", *, context: ToolContext) -> dict[str, Any]:
    """Bring a person from the team into this conversation. Call it when the visitor asks
    for a human, or when they are stuck and you cannot help (a complaint, a dispute, an
    emergency).

    Args:
        reason: One short sentence for the staff on what the visitor needs.
    """
    found = await service.request(context.session_id, reason=reason)
    frame = await service.state_frame(found)
    result: dict[str, Any] = {"state": frame["state"]}
    if frame["state"] == "waiting":
        result["position"] = frame.get("position")
        result["say"] = "A person will join shortly; the visitor can keep writing here."
    elif frame["state"] == "unavailable":
        result["team_back_at"] = frame.get("opens_at")
        result["say"] = (
            "Nobody from the team is available now. Tell the visitor when they are back "
            "and that they can leave a message with their contact details"
            + (", which you can take with capture_lead." if lead_capture_available() else ".")
        )
    return result
