"""Answers in flight: an answer another tab of its conversation can pick up mid-way.

A phone that switches from Wi-Fi to 4G drops its WebSocket mid-answer and
comes back, on a new connection that may land on another server process.
Each turn the consumer runs has a :class:`Flight`: what the answer has said
so far, and the tabs following it. A tab that resumes the conversation asks
the conversation's channel group (:func:`ask`) for the answer to the latest
question of its history; whichever connection runs that answer replies to
the tab's channel with ``stream_start`` carrying the text so far, then
forwards every later ``stream_delta`` to it (docs/protocol.md, "Resuming
mid-answer"). A question the tab has not seen (asked after it loaded the
history) reaches it as usual: the acknowledgement and ``stream_end``.

When the tab that asked goes away, :meth:`Flight.detach` keeps the answer
going for ``STREAM_GRACE_SECONDS`` on a channel of its own in the group, to
hear tabs that resume; if none has by then, the turn is cancelled and the
answer stored as interrupted, as before. Frames to other tabs go out through
one sender task per flight, in order; the turn never waits for the layer.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from typing import Any

from sophie_chat import protocol

logger = logging.getLogger(__name__)

#: The channel layer event a resuming tab sends to its conversation's group.
WANTED = "chat.answer_wanted"
# The consumer relays the frame of a "chat.relay" event unless it sent it.
_RELAY = "chat.relay"
# Seconds one layer operation may take before the frame is given up (logged).
_LAYER_TIMEOUT_SECONDS = 2.0


async def ask(layer: Any, group: str, channel: str, question_id: str) -> None:
    """Ask ``group`` for the answer in flight to ``question_id``; its writer replies to
    ``channel``.

    Never raises: without an answer to pick up (or without a layer), nothing comes.
    """
    if layer is None:
        return
    event = {"type": WANTED, "reply_channel": channel, "question_id": question_id}
    try:
        async with asyncio.timeout(_LAYER_TIMEOUT_SECONDS):
            await layer.group_send(group, event)
    except Exception:
        logger.warning("Could not ask for an answer in flight", exc_info=True)


class Flight:
    """One turn's answer as the other tabs of the conversation see it.

    The consumer's sink reports the answer here as it goes (:meth:`started`,
    :meth:`delta`, :meth:`finished`); :meth:`follow` adds a tab. Not
    thread-safe: the event loop owns it.
    """

    def __init__(self, layer: Any, group: str | None, origin: str) -> None:
        self.layer = layer
        self.group = group
        #: The channel of the connection that runs the turn.
        self.origin = origin
        #: The question answered, once stored.
        self.question_id: str | None = None
        self.message_id: str | None = None
        self.reply_to: str | None = None
        self.parts: list[str] = []
        #: Channels of the tabs that picked the answer up.
        self.followers: list[str] = []
        #: The flight's own channel, once its tab has gone (:meth:`detach`).
        self.channel: str | None = None
        self.over = False
        self._outbox: collections.deque[tuple[str | None, dict[str, Any]]] = collections.deque()
        self._sender: asyncio.Task[None] | None = None
        self._listener: asyncio.Task[None] | None = None
        self._expiry: asyncio.TimerHandle | None = None

    @property
    def detached(self) -> bool:
        """Whether the tab that asked has gone and the flight answers for itself."""
        return self.channel is not None

    # -- what the turn reports ---------------------------------------------------

    def accepted(self, question_id: str) -> None:
        self.question_id = question_id

    def started(self, message_id: str, reply_to: str) -> None:
        self.message_id, self.reply_to = message_id, reply_to
        for channel in self.followers:
            self._post(channel, self._snapshot())

    def delta(self, text: str) -> None:
        self.parts.append(text)
        if self.followers and self.message_id is not None:
            frame = protocol.stream_delta_frame(self.message_id, text)
            for channel in self.followers:
                self._post(channel, frame)

    async def finished(self, frame: dict[str, Any]) -> bool:
        """The answer ended with ``frame`` (``stream_end``); every delta is sent first.

        Returns whether the flight sent ``frame`` to the group (it does once
        detached: its tab has left the group).
        """
        self.over = True
        if self.detached:
            self._post(None, frame)
        await self._drain()
        return self.detached

    def relay(self, frame: dict[str, Any]) -> bool:
        """A whole frame for the other tabs (a tool's ``confirm_request`` or
        ``confirm_closed``): queued here, in order with the answer, once detached.

        Returns False while the tab is there: its connection relays the frame.
        """
        if not self.detached:
            return False
        self._post(None, frame)
        return True

    # -- tabs that pick the answer up ----------------------------------------------

    def follow(self, channel: str, question_id: object) -> None:
        """Send the answer so far to ``channel``, and the rest as it comes, when it is
        the answer to ``question_id``."""
        if self.over or question_id is None or question_id != self.question_id:
            return
        if channel in self.followers or channel == self.origin:
            return
        self.followers.append(channel)
        if self.message_id is not None:
            self._post(channel, self._snapshot())
        if self._expiry is not None:
            # Picked up: written to its end, as if this tab had asked.
            self._expiry.cancel()
            self._expiry = None

    def _snapshot(self) -> dict[str, Any]:
        assert self.message_id is not None
        assert self.reply_to is not None
        return protocol.stream_resume_frame(self.message_id, self.reply_to, "".join(self.parts))

    async def detach(self, turn: asyncio.Task[Any], grace: float) -> bool:
        """The tab that asked has gone: keep ``turn`` going for ``grace`` seconds.

        The flight joins the group on a channel of its own to hear tabs that
        resume; if none has followed by then, ``turn`` is cancelled (its
        answer stored as interrupted). Returns False (nothing kept) when the
        channel layer cannot be used; the caller then cancels ``turn``.
        """
        if self.layer is None or not self.group or self.over:
            return False
        try:
            async with asyncio.timeout(_LAYER_TIMEOUT_SECONDS):
                channel = await self.layer.new_channel()
                await self.layer.group_add(self.group, channel)
        except Exception:
            logger.warning("Channel layer unavailable; answer not kept", exc_info=True)
            return False
        if self.over:
            # The answer ended meanwhile (and went to the group from its tab's connection).
            with contextlib.suppress(Exception):
                await self._leave(channel)
            return True
        self.channel = channel
        self._listener = asyncio.create_task(self._listen(channel))
        if not self.followers:
            self._expiry = asyncio.get_running_loop().call_later(grace, self._expire, turn)
        logger.info(
            "Tab left mid-answer; answer kept for %s s",
            grace,
            extra={"message_id": self.message_id, "grace_seconds": grace},
        )
        return True

    def _expire(self, turn: asyncio.Task[Any]) -> None:
        self._expiry = None
        if not self.followers and not turn.done():
            logger.info("No tab picked the answer up", extra={"message_id": self.message_id})
            turn.cancel()

    async def _listen(self, channel: str) -> None:
        try:
            while True:
                event = await self.layer.receive(channel)
                reply_channel = event.get("reply_channel")
                if event.get("type") == WANTED and isinstance(reply_channel, str):
                    self.follow(reply_channel, event.get("question_id"))
        except Exception:
            # The answer goes on for the grace period; only no tab can pick it up now.
            logger.warning("Channel layer unavailable; answer kept unheard", exc_info=True)

    def close(self) -> None:
        """The turn is over (ended, failed or cancelled): stop listening, leave the group."""
        self.over = True
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        if self._listener is not None:
            self._listener.cancel()
            self._listener = None
        if self.channel is not None:
            channel, self.channel = self.channel, None
            task = asyncio.ensure_future(self._leave(channel))
            task.add_done_callback(lambda done: done.cancelled() or done.exception())

    async def _leave(self, channel: str) -> None:
        async with asyncio.timeout(_LAYER_TIMEOUT_SECONDS):
            await self.layer.group_discard(self.group, channel)

    # -- sending, in order -------------------------------------------------------

    def _post(self, channel: str | None, frame: dict[str, Any]) -> None:
        """Queue ``frame`` for ``channel`` (None: the group).

        A delta queued behind another for the same tab rides along with it: a
        fast model costs a few layer messages, not one per token.
        """
        if self.layer is None:
            return
        if self._outbox and frame["type"] == "stream_delta":
            last_channel, last = self._outbox[-1]
            if last_channel == channel and last["type"] == "stream_delta":
                self._outbox[-1] = (channel, {**last, "delta": last["delta"] + frame["delta"]})
                return
        self._outbox.append((channel, frame))
        if self._sender is None or self._sender.done():
            self._sender = asyncio.create_task(self._send_all())

    async def _send_all(self) -> None:
        while self._outbox:
            channel, frame = self._outbox.popleft()
            if channel is not None and channel not in self.followers:
                continue  # given up (below)
            event = {"type": _RELAY, "frame": frame, "origin": self.origin}
            try:
                async with asyncio.timeout(_LAYER_TIMEOUT_SECONDS):
                    if channel is None:
                        await self.layer.group_send(self.group, event)
                    else:
                        await self.layer.send(channel, event)
            except Exception:
                logger.warning(
                    "Could not send the answer to another tab",
                    exc_info=True,
                    extra={"message_id": self.message_id},
                )
                # A tab that has gone too (its channel full or expired) is not tried again.
                if channel is not None:
                    self.followers.remove(channel)

    async def _drain(self) -> None:
        if self._sender is not None:
            try:
                async with asyncio.timeout(_LAYER_TIMEOUT_SECONDS * 2):
                    await asyncio.shield(self._sender)
            except TimeoutError:
                logger.warning("Frames for other tabs still queued", exc_info=True)
