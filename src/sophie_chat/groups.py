"""Session groups on the channel layer, and living through a layer outage.

Every connection of a session joins the session's group, so the session's
other tabs (and later a human agent) receive its messages and answers,
whichever server process they are connected to. Only whole frames
(acknowledgements, typing, the stored answer) are relayed to the group;
token deltas go through the layer only to a tab that picked an answer up
mid-way (:mod:`sophie_chat.flights`).

A channel layer that fails (its Redis stopped, say) must not take the
connections down with it. While it is down, frames for other tabs are
dropped (logged), each connection keeps talking to its own client, and
waiting for the layer never blocks a turn for more than
:data:`LAYER_TIMEOUT_SECONDS`. One recovery task per process probes the layer
with growing pauses; when it answers, every connection of the process joins
its group again (a restarted Redis has forgotten the groups) and receiving
resumes.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from channels.layers import InMemoryChannelLayer

logger = logging.getLogger(__name__)

#: Seconds a group operation may take before it counts as a layer failure.
LAYER_TIMEOUT_SECONDS = 2.0
_FIRST_RETRY_SECONDS = 0.1
_MAX_RETRY_SECONDS = 2.0
#: Seconds a group found to hold one connection is taken as such for a typing indicator.
_ALONE_FOR_TYPING = 1.0
# Removing a channel from a group that never existed: a harmless round trip.
_PROBE = "sophie_chat.probe"


async def _twice(operation: Callable[[], Awaitable[Any]]) -> None:
    """Run a layer operation, again at once if it fails, within LAYER_TIMEOUT_SECONDS.

    After Redis restarts, the first command on each pooled connection fails
    (the old server closed it); the second goes over a new connection.
    """
    async with asyncio.timeout(LAYER_TIMEOUT_SECONDS):
        try:
            await operation()
        except Exception:
            await operation()


class GroupMember(Protocol):
    """A connection that may join a session group (the chat consumer)."""

    channel_layer: Any
    channel_name: str
    group: str | None


# Connections of this process that are in a group, to rejoin after an outage.
_members: weakref.WeakSet[Any] = weakref.WeakSet()


class _Outage:
    """A layer outage seen by this process, and the task that waits for its end."""

    def __init__(self, layer: Any) -> None:
        self.layer = layer
        self.loop = asyncio.get_running_loop()
        self.over = asyncio.Event()
        self.task = asyncio.create_task(self._recover())

    async def _recover(self) -> None:
        delay = _FIRST_RETRY_SECONDS
        while True:
            await asyncio.sleep(delay)
            try:
                async with asyncio.timeout(LAYER_TIMEOUT_SECONDS):
                    await self.layer.group_discard(_PROBE, _PROBE)
                    members = [m for m in list(_members) if m.group]
                    for member in members:
                        await self.layer.group_add(member.group, member.channel_name)
            except Exception:
                delay = min(delay * 2, _MAX_RETRY_SECONDS)
                continue
            logger.warning(
                "Channel layer available again; %d connections rejoined their groups",
                len(members),
                extra={"connections": len(members)},
            )
            self.over.set()
            return


_outage: _Outage | None = None


def _layer_failed(layer: Any, what: str, exc: BaseException) -> _Outage:
    """Note a failure; start waiting for the layer unless this process already is."""
    global _outage
    running = asyncio.get_running_loop()
    if _outage is None or _outage.over.is_set() or _outage.loop is not running:
        logger.warning(
            "Channel layer unavailable (%s: %s); frames for other tabs are dropped until it "
            "answers again",
            what,
            type(exc).__name__,
            exc_info=exc,
            extra={"operation": what},
        )
        _outage = _Outage(layer)
    return _outage


def session_group(session_id: str) -> str:
    """The channel group of a session; derived from its id, never taken from a client."""
    return f"sophie_chat.session.{session_id.replace('-', '')}"


async def send(layer: Any, group: str, event: dict[str, Any]) -> None:
    """Send ``event`` to ``group`` from outside a connection (a service). Never raises."""
    if layer is None:
        return
    try:
        await _twice(lambda: layer.group_send(group, event))
    except Exception as exc:
        _layer_failed(layer, "group_send", exc)


async def join(member: GroupMember, group: str) -> None:
    """Put ``member`` in ``group`` (leaving its previous group). Never raises."""
    layer = member.channel_layer
    if layer is None:
        return
    previous, member.group = member.group, group
    _members.add(member)
    try:
        if previous and previous != group:
            await _twice(lambda: layer.group_discard(previous, member.channel_name))
        await _twice(lambda: layer.group_add(group, member.channel_name))
    except Exception as exc:
        # The recovery task adds it when the layer is back.
        _layer_failed(layer, "group_add", exc)


async def leave(member: GroupMember) -> None:
    """Take ``member`` out of its group. Never raises."""
    _members.discard(member)
    layer, group, member.group = member.channel_layer, member.group, None
    if layer is None or not group:
        return
    try:
        await _twice(lambda: layer.group_discard(group, member.channel_name))
    except Exception:
        # Nothing to recover: a lost channel drops out of the group on its own
        # (the layer's group expiry).
        logger.info("Could not leave group; the layer will expire it", exc_info=True)


def _alone(layer: Any, member: GroupMember) -> bool:
    """Whether no other connection can be in ``member``'s group, known without I/O.

    Only an in-memory layer knows: its groups are this process's. Sending to
    a group of one would scan every channel of the process (the layer's
    expiry sweep) and deliver the frame back to its sender, to be dropped.
    """
    if not isinstance(layer, InMemoryChannelLayer):
        return False
    channels = layer.groups.get(member.group)
    return not channels or channels.keys() <= {member.channel_name}


def _redis_group(layer: Any, group: str) -> tuple[Any, str, float] | None:
    """channels-redis's connection and key for ``group``, and the oldest live membership.

    ``None`` for any other layer (channels-redis's pub/sub layer included).
    """
    try:
        from channels_redis.core import RedisChannelLayer
    except ImportError:
        return None
    if not isinstance(layer, RedisChannelLayer):
        return None
    try:
        connection = layer.connection(layer.consistent_hash(group))
        return connection, layer._group_key(group), time.time() - layer.group_expiry
    except Exception:
        return None


async def _alone_in_redis(layer: Any, member: GroupMember, group: str) -> bool:
    """Whether ``member`` is the only live member of ``group`` on channels-redis.

    One round trip. A group send there costs four, and comes back to its
    sender to be dropped: a conversation open in a single tab, the common
    case, sends its frames to nobody. Any doubt (another layer, an error)
    answers False, and the frame is sent.
    """
    found = _redis_group(layer, group)
    if found is None:
        return False
    connection, key, oldest = found
    try:
        async with asyncio.timeout(LAYER_TIMEOUT_SECONDS):
            # The same bound as channels-redis's own group_send: older memberships expired.
            members = await connection.zrangebyscore(key, oldest, "+inf", start=0, num=2)
    except Exception:
        return False
    return all(name.decode() == member.channel_name for name in members)


async def relay(member: GroupMember, frame: dict[str, Any]) -> None:
    """Send ``frame`` to the other connections of ``member``'s group. Never raises."""
    layer = member.channel_layer
    if layer is None or not member.group or _alone(layer, member):
        return
    group = member.group
    now = time.monotonic()
    recently_alone = now - getattr(member, "alone_at", -1e9) < _ALONE_FOR_TYPING
    if frame.get("type") == "typing" and recently_alone:
        # Just found alone (the question's acknowledgement): a tab opened since
        # misses only the indicator, never a message.
        return
    if await _alone_in_redis(layer, member, group):
        member.alone_at = now  # type: ignore[attr-defined]
        return
    member.alone_at = -1e9  # type: ignore[attr-defined]
    event = {"type": "chat.relay", "frame": frame, "origin": member.channel_name}
    try:
        await _twice(lambda: layer.group_send(group, event))
    except Exception as exc:
        _layer_failed(layer, "group_send", exc)


def resilient(
    layer: Any, receive: Callable[[], Awaitable[dict[str, Any]]]
) -> Callable[[], Awaitable[dict[str, Any]]]:
    """``receive`` from the layer, waiting out outages instead of raising."""

    async def receive_through_outages() -> dict[str, Any]:
        while True:
            try:
                return await receive()
            except Exception as exc:
                await _layer_failed(layer, "receive", exc).over.wait()

    return receive_through_outages
