"""The staff inbox: where people take conversations over from Sophie (docs/handoff.md).

A page at ``chat/inbox/`` (:mod:`.views`) and its staff-only WebSocket
consumer at ``ws/chat/inbox/`` (:mod:`.consumers`, frames in
docs/protocol.md, "Staff inbox"), for users with the
``sophie_chat.handle_conversation`` permission. The consumer joins the
channel group :data:`INBOX_GROUP`, where :mod:`sophie_chat.handoff` tells
every process of each change, sends a snapshot, then the changes. What the
page reads (conversations, transcripts, the visitor's context, notes) is in
:mod:`.data`; who is online, in :mod:`.presence`.
"""

# The permission an agent needs, and the channel group of every open inbox tab.
from sophie_chat.handoff.service import INBOX_GROUP, PERMISSION

__all__ = ["INBOX_GROUP", "PERMISSION", "may_handle"]


def may_handle(user: object) -> bool:
    """Whether ``user`` may work in the inbox (active, with :data:`PERMISSION`)."""
    return bool(
        user is not None
        and getattr(user, "is_authenticated", False)
        and getattr(user, "is_active", False)
        and user.has_perm(PERMISSION)  # type: ignore[attr-defined]
    )
