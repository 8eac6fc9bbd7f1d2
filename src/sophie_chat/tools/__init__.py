"""Tools: the host's typed functions that Sophie may call (docs/tools.md).

::

    from sophie_chat.tools import ToolContext, tool

    @tool(requires_login=True, label=_("Looking up your bookings…"))
    def my_bookings(*, context: ToolContext) -> list[dict]:
        \"\"\"The visitor's upcoming bookings.\"\"\"
        return [...]

and ``SOPHIE_CHAT = {"TOOLS": ["myapp.tools.my_bookings"]}``.
"""

from sophie_chat.tools.base import (
    Tool,
    ToolArgumentsInvalid,
    ToolContext,
    ToolDefinition,
    ToolError,
    tool,
)

__all__ = [
    "Tool",
    "ToolArgumentsInvalid",
    "ToolContext",
    "ToolDefinition",
    "ToolError",
    "tool",
]
