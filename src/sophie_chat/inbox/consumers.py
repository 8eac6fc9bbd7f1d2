"""The staff inbox's WebSocket consumer: route it at ``ws/chat/inbox/`` (docs/protocol.md).

Speaks the "Staff inbox" frames (:mod:`.frames`) and nothing else: the
handoff services (:mod:`sophie_chat.handoff`) change the conversations and
tell every inbox tab through the channel group :data:`~sophie_chat.inbox.INBOX_GROUP`;
:mod:`.data` reads what the tabs show. Only a logged-in user with the
``sophie_chat.handle_conversation`` permission connects (others are closed
with 4403), and the permission is read again from the database before each
action, so taking it away takes effect at once.
"""

from __future__ import annotations

import logging
from typing import Any

from channels.consumer import get_handler_name
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db import DatabaseError
from django.utils import translation

from sophie_chat import conf, groups, handoff, protocol
from sophie_chat.consumers import pick_locale
from sophie_chat.db import database_call
from sophie_chat.exceptions import ChatError, DatabaseUnavailable, InternalError, InvalidMessage
from sophie_chat.inbox import INBOX_GROUP, data, frames, may_handle, presence

logger = logging.getLogger(__name__)


@database_call
def _fresh_agent(user_id: int | None) -> Any:
    """The user, read again with their permissions; None unless they may use the inbox."""
    if user_id is None:
        return None
    user = get_user_model().objects.filter(pk=user_id).first()
    return user if may_handle(user) else None


class InboxConsumer(AsyncWebsocketConsumer):
    """One agent's inbox tab."""

    group: str | None = None

    @property
    def channel_receive(self) -> Any:
        return self._channel_receive

    @channel_receive.setter
    def channel_receive(self, receive: Any) -> None:
        # A channel layer outage is waited out, as the visitor's consumer does.
        self._channel_receive = groups.resilient(self.channel_layer, receive)

    async def connect(self) -> None:
        self.agent: Any = None
        self.group = None
        #: The conversation this tab shows (its visitor messages count as read).
        self.opened: int | None = None
        self.locale = pick_locale(self.scope)
        user = self.scope.get("user")
        user_id = user.pk if user is not None and user.is_authenticated else None
        await self.accept()
        with translation.override(self.locale):
            self.agent = await _fresh_agent(user_id)
            if self.agent is None:
                await self.refuse()
                return
            await groups.join(self, INBOX_GROUP)
            await self.set_presence(presence.ONLINE)
            await self.send_frame(await self.snapshot())
        logger.debug("Inbox connected", extra={"user_id": self.agent.pk})

    async def lose_access(self) -> None:
        await self.set_presence_gone()
        self.agent = None
        await self.refuse()

    async def refuse(self) -> None:
        error = frames.NotAllowed()
        await self.send_frame(frames.error_frame(error))
        await self.close(code=error.close_code)

    async def snapshot(self) -> dict[str, Any]:
        # Waits past their timeout expire first (a restarted process lost its timers).
        await handoff.sweep()
        agents = await data.agents()
        states = await presence.states(a["id"] for a in agents)
        return {
            "type": "snapshot",
            "me": {"id": self.agent.pk, "name": data.display_name(self.agent)},
            "conversations": await data.conversations(self.agent.pk),
            "agents": [{**a, "presence": states[a["id"]]} for a in agents],
            "canned_replies": await data.canned_replies(),
            "agent_idle": conf.get("HANDOFF")["AGENT_IDLE"],
        }

    async def disconnect(self, code: int) -> None:
        if self.agent is not None:
            await self.set_presence_gone()
        await groups.leave(self)
        raise StopConsumer()

    # -- inbound ---------------------------------------------------------------

    async def dispatch(self, message: dict[str, Any]) -> None:
        # As the chat consumer: Sophie's units of work close stale connections themselves.
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.agent is None:
            return  # refused connection closing
        with translation.override(self.locale):
            handoff_id = None
            try:
                frame = frames.parse_frame(text_data, bytes_data)
                handoff_id = getattr(frame, "handoff_id", None)
                if isinstance(frame, frames.Ping):
                    await self.set_presence(None, refresh=True)
                    await self.send_frame(protocol.pong_frame())
                    return
                fresh = await _fresh_agent(self.agent.pk)
                if fresh is None:
                    await self.lose_access()
                    return
                self.agent = fresh
                await self.act(frame)
            except ChatError as error:
                await self.send_frame(frames.error_frame(error, handoff_id))
            except handoff.InvalidText as error:
                await self.send_frame(frames.error_frame(InvalidMessage(str(error)), handoff_id))
            except handoff.NotHeld:
                await self.send_frame(frames.error_frame(frames.NotYours(), handoff_id))
            except PermissionDenied:
                # The permission went between our check and the service's.
                await self.lose_access()
            except DatabaseError as exc:
                logger.error("Database error in the inbox", exc_info=exc)
                await self.send_frame(frames.error_frame(DatabaseUnavailable(), handoff_id))
            except Exception as exc:
                logger.error("Unexpected error in the inbox", exc_info=exc)
                await self.send_frame(frames.error_frame(InternalError(), handoff_id))

    async def act(self, frame: frames.StaffFrame) -> None:
        agent = self.agent
        match frame:
            case frames.Open(handoff_id):
                found = await data.details(handoff_id)
                if found is None:
                    raise frames.HandoffNotFound()
                self.opened = handoff_id
                await data.mark_read(agent.pk, handoff_id)
                await self.send_frame({"type": "conversation", **found})
                await self.send_summary(handoff_id)
            case frames.Claim(handoff_id):
                if not await handoff.claim(handoff_id, agent):
                    raise frames.AlreadyClaimed(await self.claimed_by(handoff_id))
                await self.ack("claim", handoff_id)
            case frames.Transfer(handoff_id, agent_id):
                target = await _fresh_agent(agent_id)
                if target is None:
                    raise frames.AgentUnavailable()
                if not await handoff.transfer(handoff_id, agent, target):
                    raise frames.NotYours()
                await self.ack("transfer", handoff_id)
            case frames.End(handoff_id):
                # The service ends any active handoff; the inbox lets only its holder.
                if not await data.held_by(handoff_id, agent.pk) or not await handoff.end(
                    handoff_id, agent
                ):
                    raise frames.NotYours()
                await self.ack("end", handoff_id)
            case frames.AgentMessage(handoff_id, content, client_message_id):
                await handoff.send_agent_message(handoff_id, agent, content)
                await data.mark_read(agent.pk, handoff_id)
                await self.ack("message", handoff_id, client_message_id=client_message_id)
            case frames.Typing(handoff_id, is_typing):
                if not await handoff.agent_typing(handoff_id, agent, is_typing):
                    raise frames.NotYours()
            case frames.Note(handoff_id, content):
                note = await data.add_note(handoff_id, agent.pk, content)
                if note is None:
                    raise frames.HandoffNotFound()
                await self.to_inbox({"type": "inbox.note", "handoff_id": handoff_id, "note": note})
            case frames.Presence(state):
                await self.set_presence(state)

    async def claimed_by(self, handoff_id: int) -> str | None:
        """Why a claim lost: who took the conversation, or that it no longer waits."""
        row = await data.conversation(self.agent.pk, handoff_id)
        if row is None:
            raise frames.HandoffNotFound()
        if row["state"] != "active":
            raise frames.NotWaiting()
        if row["agent"]:
            return frames.already_claimed_message(row["agent"]["name"])
        return None

    async def ack(self, of: str, handoff_id: int, **fields: Any) -> None:
        await self.send_frame({"type": "ack", "of": of, "handoff_id": handoff_id, **fields})

    async def send_summary(self, handoff_id: int) -> None:
        row = await data.conversation(self.agent.pk, handoff_id)
        if row is not None:
            await self.send_frame({"type": "conversation_changed", "conversation": row})

    # -- presence ----------------------------------------------------------------

    async def set_presence(self, state: str | None, *, refresh: bool = False) -> None:
        """Record this tab's state (``refresh``: the same as before) and tell the inbox."""
        if refresh:
            state = getattr(self, "tab_state", presence.ONLINE)
        elif state is not None:
            self.tab_state = state
        if state is None:
            return
        before = getattr(self, "agent_state", None)
        self.agent_state = await presence.set_tab(self.agent.pk, self.channel_name, state)
        if self.agent_state != before:
            await self.tell_presence(self.agent_state)

    async def set_presence_gone(self) -> None:
        state = await presence.set_tab(self.agent.pk, self.channel_name, None)
        await self.tell_presence(state)

    async def tell_presence(self, state: str) -> None:
        await self.to_inbox(
            {
                "type": "inbox.presence",
                "agent": {"id": self.agent.pk, "name": data.display_name(self.agent)},
                "presence": state,
            }
        )

    # -- outbound ----------------------------------------------------------------

    async def send_frame(self, frame: dict[str, Any]) -> None:
        await self.send(text_data=protocol.encode(frame))

    async def to_inbox(self, event: dict[str, Any]) -> None:
        """Send an event to every inbox tab, this one included, whatever their process."""
        if self.channel_layer is None:
            return
        try:
            await self.channel_layer.group_send(INBOX_GROUP, event)
        except Exception:
            logger.warning("Channel layer unavailable; inbox event dropped", exc_info=True)

    async def inbox_changed(self, event: dict[str, Any]) -> None:
        await self.send_summary(event["handoff_id"])

    async def inbox_lead(self, event: dict[str, Any]) -> None:
        handoff_id = await data.latest_of_session(event["session_id"])
        if handoff_id is not None:
            await self.send_summary(handoff_id)

    async def inbox_message(self, event: dict[str, Any]) -> None:
        handoff_id = event["handoff_id"]
        if self.opened == handoff_id:
            await data.mark_read(self.agent.pk, handoff_id)
        await self.send_frame(
            {"type": "message", "handoff_id": handoff_id, "message": event["message"]}
        )

    async def inbox_typing(self, event: dict[str, Any]) -> None:
        frame = {k: v for k, v in event.items() if k != "type"}
        await self.send_frame({"type": "typing", **frame})

    async def inbox_note(self, event: dict[str, Any]) -> None:
        await self.send_frame(
            {"type": "note", "handoff_id": event["handoff_id"], "note": event["note"]}
        )

    async def inbox_presence(self, event: dict[str, Any]) -> None:
        await self.send_frame(
            {"type": "presence", "agent": event["agent"], "presence": event["presence"]}
        )
