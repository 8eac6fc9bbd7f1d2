"""The WebSocket consumer: speaks protocol v1 (docs/protocol.md) and nothing else.

Frames are validated and built by :mod:`sophie_chat.protocol`, turns are run
by :mod:`sophie_chat.engine`, sessions are read and written by
:mod:`sophie_chat.store`, connections are counted by
:mod:`sophie_chat.connections`. User messages queue per connection and are
answered one at a time, in order, in a worker task, so ``ping``,
``typing`` and ``feedback`` are answered while an answer streams.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from typing import Any
from urllib.parse import parse_qs

from channels.consumer import get_handler_name
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import DatabaseError, DataError
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import trans_real

from sophie_chat import backends, conf, engine, flights, groups, handoff, metrics, protocol, store
from sophie_chat.connections import registry
from sophie_chat.context import resolve_user_type
from sophie_chat.exceptions import (
    ChatError,
    DatabaseUnavailable,
    Forbidden,
    InternalError,
    InvalidMessage,
    RateLimited,
    RefusedAtOnce,
    ServiceUnavailable,
    SessionNotFound,
    TooManyConnections,
)
from sophie_chat.ratelimit.base import RateLimiterUnavailable
from sophie_chat.security import (
    client_ip,
    make_resume_token,
    origin_allowed,
    session_id_from_token,
)
from sophie_chat.store import SessionState, StoredMessage
from sophie_chat.tools import confirmations
from sophie_chat.tools import records as tool_records
from sophie_chat.tools import registry as tool_registry
from sophie_chat.tools.records import OpenConfirmation

logger = logging.getLogger(__name__)

# Error frames one connection records for the dashboard; past it a misbehaving
# client's errors are only counted in metrics, not written to the database.
MAX_RECORDED_ERRORS_PER_CONNECTION = 50


group_name = groups.session_group


def pick_locale(scope: dict[str, Any]) -> str:
    """``?locale=`` of the WebSocket URL, else Accept-Language, else LANGUAGE_CODE."""
    query = parse_qs((scope.get("query_string") or b"").decode("latin-1"))
    candidates = list(query.get("locale", []))
    for name, value in scope.get("headers") or ():
        if name.lower() == b"accept-language":
            candidates.extend(
                code for code, _q in trans_real.parse_accept_lang_header(value.decode("latin-1"))
            )
    for candidate in candidates:
        try:
            return trans_real.get_supported_language_variant(candidate.strip()[:16])
        except LookupError:
            continue
    return settings.LANGUAGE_CODE


class ChatConsumer(AsyncWebsocketConsumer):
    """One visitor's browser tab. Route it at ``ws/chat/`` (see :mod:`sophie_chat.routing`)."""

    # The session this connection started, and the client ids sent in it.
    sent_ids: tuple[str, set[str]] | None = None

    group: str | None = None

    # Set in connect(); here too, so that cleaning up never meets a missing attribute.
    counted_as: str | None = None
    worker: asyncio.Task[None] | None = None
    # A send failed, or the connection ended: nothing more is sent.
    gone: bool = False
    let_go_done: bool = False
    # time.monotonic() until which the rate limiter's last refusal holds.
    limited_until: float = 0.0
    flight: flights.Flight | None = None
    detached: bool = False

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        # disconnect() runs only when the server reports the close; whatever
        # else ends the connection (an exception in a handler, a server that
        # drops it) must give the slot back too, or the client is locked out.
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self.let_go()

    # Channels' AsyncConsumer.__call__ sets ``channel_receive`` to the layer's
    # receive and ends the connection when it raises; wrapped, a channel layer
    # outage is waited out instead (see sophie_chat.groups).
    @property
    def channel_receive(self) -> Any:
        return self._channel_receive

    @channel_receive.setter
    def channel_receive(self, receive: Any) -> None:
        self._channel_receive = groups.resilient(self.channel_layer, receive)

    async def connect(self) -> None:
        self.session: SessionState | None = None
        self.queue: asyncio.Queue[protocol.UserMessage] = asyncio.Queue()
        self.worker: asyncio.Task[None] | None = None
        #: The answer being written for this tab, for other tabs to pick up.
        self.flight: flights.Flight | None = None
        #: The socket has gone while an answer is kept for another tab: nothing more is sent.
        self.detached = False
        self.counted_as: str | None = None
        self.recorded_errors = 0
        self.group: str | None = None
        #: The session's open handoff as last read; None: not read since it last changed.
        self.handoff: tuple[handoff.OpenHandoff | None] | None = None
        self.locale = pick_locale(self.scope)
        user = self.scope.get("user")
        self.user = user
        self.user_id = user.pk if user is not None and user.is_authenticated else None
        self.ip = client_ip(self.scope)
        await self.accept()
        with translation.override(self.locale):
            if not origin_allowed(self.scope) or (
                self.user_id is None and not conf.get("ALLOW_ANONYMOUS")
            ):
                await self.refuse(Forbidden())
                return
            if not self.take_connection_slot():
                await self.refuse(TooManyConnections())
                return
            self.user_type = await resolve_user_type(user)
            await self.send_frame(self.welcome())
        logger.debug("Chat connected", extra={"user_id": self.user_id, "locale": self.locale})

    def take_connection_slot(self) -> bool:
        client = f"user:{self.user_id}" if self.user_id is not None else f"ip:{self.ip}"
        if not registry.open(client):
            logger.warning(
                "Connection refused: cap reached",
                extra={"client_kind": client.split(":")[0], "open_connections": registry.total},
            )
            return False
        self.counted_as = client
        metrics.connection_opened()
        return True

    def release_connection_slot(self) -> None:
        if self.counted_as is None:
            return
        registry.close(self.counted_as)
        self.counted_as = None
        metrics.connection_closed()

    async def refuse(self, error: ChatError) -> None:
        # Counted in metrics only: a flood of refused connections must not become writes.
        metrics.connection_refused()
        metrics.error_sent(error.code)
        await self.send_frame(protocol.error_frame(error))
        await self.close(code=error.close_code)

    def welcome(self) -> dict[str, Any]:
        name = conf.get("ASSISTANT_NAME")
        greeting = conf.get("GREETING") or _("Hi! I'm %(name)s. How can I help you today?") % {
            "name": name
        }
        return protocol.welcome_frame(
            name=name,
            avatar_url=conf.get("ASSISTANT_AVATAR_URL"),
            greeting=greeting,
            limits={
                "max_message_length": conf.get("MAX_MESSAGE_LENGTH"),
                "min_message_length": conf.get("MIN_MESSAGE_LENGTH"),
                "max_feedback_length": conf.get("MAX_FEEDBACK_LENGTH"),
                "max_context_size_bytes": conf.get("MAX_CONTEXT_SIZE_BYTES"),
                "max_frame_bytes": conf.get("MAX_FRAME_BYTES"),
            },
            features={"tools": tool_registry.enabled(), "handoff": handoff.enabled()},
        )

    async def disconnect(self, code: int) -> None:
        await self.let_go()
        raise StopConsumer()

    async def let_go(self) -> None:
        """Give back the slot, keep or stop the answer, leave the group. Runs once."""
        if self.let_go_done:
            return  # disconnect() did it; __call__'s cleanup must not stop a kept answer
        self.let_go_done = True
        self.gone = True
        self.release_connection_slot()
        if self.worker is not None and not await self.keep_answering(self.worker):
            self.worker.cancel()
            # Let the engine store the interrupted answer before we go.
            await asyncio.wait([self.worker], timeout=10)
        await groups.leave(self)

    async def keep_answering(self, worker: asyncio.Task[None]) -> bool:
        """Keep the answer being written for ``STREAM_GRACE_SECONDS``, for a tab that resumes
        (see :mod:`sophie_chat.flights`); False when there is none to keep."""
        grace = conf.get("STREAM_GRACE_SECONDS")
        if worker.done() or not grace or self.flight is None:
            return False
        self.detached = True
        # Messages queued behind the answer were not acknowledged: the client sends them again.
        while not self.queue.empty():
            self.queue.get_nowait()
        if await self.flight.detach(worker, grace):
            return True
        self.detached = False
        return False

    # -- inbound ---------------------------------------------------------------

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Channels' dispatch closes stale database connections before every
        # handler: a hop through its database thread for each frame.
        # Sophie's units of work (sophie_chat.store) do that themselves.
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.counted_as is None:
            return  # refused connection closing; nothing more is read
        with translation.override(self.locale):
            try:
                frame = protocol.parse_frame(text_data, bytes_data)
                await self.dispatch_frame(frame)
            except ChatError as error:
                await self.send_error(error)
            except Exception as exc:
                await self.send_error(self.unexpected(exc, None))

    async def dispatch_frame(self, frame: protocol.ClientFrame) -> None:
        match frame:
            case protocol.Ping():
                await self.send_frame(protocol.pong_frame())
            case protocol.SessionInit():
                await self.session_init(frame)
            case protocol.UserMessage():
                if (refusal := self.still_limited(frame)) is not None:
                    raise refusal
                if self.queue.qsize() >= conf.get("MAX_QUEUED_MESSAGES"):
                    # Refused before anything is stored: a flood costs no memory, no rows.
                    raise RefusedAtOnce(reply_to=frame.client_message_id)
                if self.session is None:
                    await self.start_session(None)
                self.queue.put_nowait(frame)
                if self.worker is None or self.worker.done():
                    self.worker = asyncio.create_task(self.answer_queue())
            case protocol.Typing():
                if self.session is not None:
                    await self.to_group(protocol.typing_frame(frame.is_typing, "user"))
                    await self.typing_to_agent(frame.is_typing)
            case protocol.Feedback():
                session = self.require_session()
                await store.store_feedback(
                    session.id, frame.message_id, frame.rating, frame.comment
                )
                await self.send_frame(protocol.ack_frame("feedback", message_id=frame.message_id))
            case protocol.SessionRate():
                session = self.require_session()
                await store.rate_session(session.id, frame.score, frame.comment)
                if handoff.enabled():
                    # After a person's conversation, the rating is theirs too (human CSAT).
                    await handoff.rate_person(session.id, frame.score)
                await self.send_frame(protocol.ack_frame("session_rate"))
            case protocol.Confirm():
                await self.confirm(frame)
            case protocol.HandoffRequest() | protocol.HandoffCancel():
                await self.handoff_request(frame)
            case protocol.HandoffLeaveMessage():
                await self.leave_message(frame)
            case protocol.SessionClose():
                session = self.require_session()
                await store.close_session(session.id)
                if handoff.enabled():
                    # The agent hears the visitor has gone.
                    await handoff.close(session.id)
                closed = protocol.session_closed_frame(session.id)
                await self.send_frame(closed)
                await self.to_group(closed)

    async def confirm(self, frame: protocol.Confirm) -> None:
        """The visitor's answer to a tool's confirmation: the first valid one wins.

        Raises ``confirmation_not_found`` (unknown, decided, another visitor's)
        or ``confirmation_expired``.
        """
        session = self.require_session()
        outcome = await tool_records.decide(
            frame.confirmation_id,
            session_id=session.id,
            user_id=self.user_id,
            accept=frame.accept,
        )
        metrics.confirmation_decided(outcome)
        confirmations.notify(frame.confirmation_id)
        closed = protocol.confirm_closed_frame(frame.confirmation_id, outcome)
        await self.send_frame(closed)
        await self.to_group(closed)

    async def handoff_request(
        self, frame: protocol.HandoffRequest | protocol.HandoffCancel
    ) -> None:
        """Ask for a person, or stop waiting; this tab and every other hear the state."""
        if not handoff.enabled():
            raise InvalidMessage(_("Talking to a person is not available here."))
        if self.session is None:
            await self.start_session(None)
        session = self.require_session()
        await self.limit_handoff(session.id)
        self.handoff = None
        if isinstance(frame, protocol.HandoffRequest):
            found = await handoff.request(session, reason=frame.reason, origin=self.channel_name)
            await self.send_frame(await handoff.state_frame(found))
            return
        if await handoff.cancel(session, origin=self.channel_name):
            await self.send_frame(protocol.handoff_frame("ended", cancelled=True))
            return
        # Nothing was waiting (claimed meanwhile, say): this tab hears how things stand.
        state = await handoff.session_state(session.id)
        await self.send_frame(state or protocol.handoff_frame("ended"))

    async def leave_message(self, frame: protocol.HandoffLeaveMessage) -> None:
        """Store a message for the team (a visitor nobody could take)."""
        if not handoff.enabled():
            raise InvalidMessage(_("Talking to a person is not available here."))
        session = self.require_session()
        await self.limit_handoff(session.id)
        try:
            await handoff.leave_message(
                session.id,
                name=frame.name,
                contact=frame.contact,
                message=frame.message,
                locale=self.locale,
            )
        except ValidationError as exc:
            raise InvalidMessage(_("Give an e-mail address or a phone number.")) from exc
        await self.send_frame(protocol.ack_frame("handoff_leave_message"))

    async def limit_handoff(self, session_id: str) -> None:
        """Asking for a person (and leaving messages) counts against the visitor's rate:
        each request may e-mail the staff."""
        try:
            decision = await backends.rate_limiter().hit(f"handoff:{session_id}")
        except RateLimiterUnavailable as exc:
            if conf.get("RATE_LIMIT_FAIL_OPEN"):
                return
            raise ServiceUnavailable() from exc
        if not decision.allowed:
            raise RateLimited(retry_after=decision.retry_after)

    async def typing_to_agent(self, is_typing: bool) -> None:
        """While a person is (or is about to be) in the conversation, they see the visitor type."""
        if not handoff.enabled() or self.session is None:
            return
        if self.handoff is None:
            self.handoff = (await handoff.open_handoff(self.session.id),)
        found = self.handoff[0]
        if found is not None:
            await handoff.visitor_typing(found.id, self.session.id, is_typing)

    def unexpected(self, exc: Exception, reply_to: str | None) -> ChatError:
        """The error a client hears about an exception no ChatError described."""
        session_id = self.session.id if self.session else None
        if isinstance(exc, DataError):
            # The database refuses the value itself: retrying can never succeed.
            logger.error(
                "Data refused by the database", exc_info=exc, extra={"session_id": session_id}
            )
            return InvalidMessage(reply_to=reply_to)
        if isinstance(exc, DatabaseError):
            # Nothing was stored (the unit of work rolled back); retrying is safe.
            logger.error("Database error", exc_info=exc, extra={"session_id": session_id})
            return DatabaseUnavailable(reply_to=reply_to)
        logger.error("Unexpected error", exc_info=exc, extra={"session_id": session_id})
        return InternalError(reply_to=reply_to)

    def require_session(self) -> SessionState:
        if self.session is None:
            raise SessionNotFound()
        return self.session

    async def session_init(self, frame: protocol.SessionInit) -> None:
        context = {"page": frame.context.as_dict()} if frame.context else None
        if frame.context and frame.context.extra:
            context["extra"] = frame.context.extra
        if frame.context and frame.context.locale:
            self.set_locale(frame.context.locale)
        if frame.session_id is None and frame.resume_token is None:
            await self.start_session(context)
            return
        await engine.limit_session_start(self.visitor())
        token_session = session_id_from_token(frame.resume_token) if frame.resume_token else None
        if frame.resume_token and token_session is None and frame.session_id is None:
            raise SessionNotFound()
        session, history = await store.resume_session(
            session_id=frame.session_id,
            token_session_id=token_session,
            user_id=self.user_id,
            user_type=self.user_type,
            locale=self.locale,
            context=context,
            client_ip=self.ip,
        )
        await self.bind(session)
        state = await handoff.session_state(session.id) if handoff.enabled() else None
        await self.send_frame(
            self.session_frame(session, resumed=True, history=history, handoff=state)
        )
        if conf.get("TOOLS"):
            # A tool still waiting for this conversation's visitor asks this tab too.
            for waiting in await tool_records.open_confirmations(session.id):
                await self.send_frame(confirm_request_frame(waiting))
        # The answer to the latest question, if still being written for another tab (or
        # for this one before a network blip), follows as stream_start with the text so
        # far (sophie_chat.flights).
        question = next((m for m in reversed(history) if m.role == "user"), None)
        if question is not None and self.channel_layer is not None:
            await flights.ask(
                self.channel_layer, group_name(session.id), self.channel_name, question.id
            )

    def set_locale(self, locale: str) -> None:
        try:
            self.locale = trans_real.get_supported_language_variant(locale)
        except LookupError:
            return

    def visitor(self) -> engine.Visitor:
        return engine.Visitor(
            user=self.user, user_id=self.user_id, user_type=self.user_type, ip=self.ip
        )

    async def start_session(self, context: dict[str, Any] | None) -> None:
        await engine.limit_session_start(self.visitor())
        session = await store.create_session(
            user_id=self.user_id,
            user_type=self.user_type,
            locale=self.locale,
            context=context or {},
            client_ip=self.ip,
        )
        await self.bind(session)
        self.sent_ids = (session.id, set())
        await self.send_frame(self.session_frame(session, resumed=False, history=[]))

    def may_be_resent(self, frame: protocol.UserMessage) -> bool:
        """Whether the message may have been stored before (see ``TurnRequest``)."""
        sent = self.sent_ids
        fresh = sent is not None and self.session is not None and self.session.id == sent[0]
        if frame.client_message_id is None or not fresh:
            return True
        if frame.client_message_id in sent[1]:
            return True
        sent[1].add(frame.client_message_id)
        return False

    async def bind(self, session: SessionState) -> None:
        await groups.join(self, group_name(session.id))
        self.session = session

    def session_frame(
        self,
        session: SessionState,
        *,
        resumed: bool,
        history: list[StoredMessage],
        handoff: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        return protocol.session_frame(
            session_id=session.id,
            resume_token=make_resume_token(session.id),
            resumed=resumed,
            status=session.status,
            history=history,
            locale=self.locale,
            handoff=handoff,
        )

    # -- turns -------------------------------------------------------------------

    def still_limited(self, frame: protocol.UserMessage) -> RefusedAtOnce | None:
        """The refusal of a message sent before the limiter's last ``retry_after`` ran out.

        The limiter would refuse it too; refused here, it costs no limiter hit
        and no analytics write.
        """
        left = self.limited_until - time.monotonic()
        if left <= 0:
            return None
        return RefusedAtOnce(retry_after=math.ceil(left), reply_to=frame.client_message_id)

    async def answer_queue(self) -> None:
        while not self.queue.empty():
            frame = self.queue.get_nowait()
            if (refusal := self.still_limited(frame)) is not None:
                await self.send_error(refusal)
                continue
            sink = _Sink(self)
            self.flight = sink.flight
            with translation.override(self.locale):
                try:
                    await engine.run_turn(
                        engine.TurnRequest(
                            session=self.require_session(),
                            visitor=engine.Visitor(
                                user=self.user,
                                user_id=self.user_id,
                                user_type=self.user_type,
                                ip=self.ip,
                            ),
                            content=frame.content,
                            client_message_id=frame.client_message_id,
                            locale=self.locale,
                            may_be_resent=self.may_be_resent(frame),
                        ),
                        sink,
                    )
                except ChatError as error:
                    if type(error) is RateLimited and error.retry_after:
                        self.limited_until = time.monotonic() + error.retry_after
                    await self.send_error(error)
                except Exception as exc:
                    await self.send_error(self.unexpected(exc, frame.client_message_id))
                finally:
                    self.flight = None
                    sink.flight.close()

    # -- outbound ----------------------------------------------------------------

    async def send_frame(self, frame: dict[str, Any]) -> None:
        if self.detached or self.gone:
            return
        try:
            await self.send(text_data=protocol.encode(frame))
        except OSError:
            # The client went away (uvicorn's ClientDisconnected); the close
            # reaches disconnect() or __call__'s cleanup, not the frame's sender.
            self.gone = True

    async def send_error(self, error: ChatError) -> None:
        """Count an error by code (metrics, the analytics dashboard), then send its frame."""
        metrics.error_sent(error.code)
        # Recording a database failure in the database would only delay its frame.
        # Nor is a refusal that exists to spare the server work.
        if self.recorded_errors < MAX_RECORDED_ERRORS_PER_CONNECTION and not isinstance(
            error, (DatabaseUnavailable, RefusedAtOnce)
        ):
            self.recorded_errors += 1
            await store.record_error(self.session.id if self.session else None, error.code)
        await self.send_frame(protocol.error_frame(error))

    async def to_group(self, frame: dict[str, Any]) -> None:
        """Send a frame to the session's other connections (other tabs, agents)."""
        await groups.relay(self, frame)

    async def chat_relay(self, event: dict[str, Any]) -> None:
        if event.get("origin") != self.channel_name:
            frame = event["frame"]
            if frame.get("type") == "confirm_closed":
                # Another tab decided: the turn of this process that waits hears it now.
                confirmations.notify(frame["confirmation_id"])
            elif frame.get("type") == "handoff":
                self.handoff = None  # read again when next needed
            await self.send_frame(frame)

    async def chat_answer_wanted(self, event: dict[str, Any]) -> None:
        """A tab resumed the conversation: it gets the answer being written, if any."""
        reply_channel = event.get("reply_channel")
        if self.flight is not None and isinstance(reply_channel, str):
            self.flight.follow(reply_channel, event.get("question_id"))


def confirm_request_frame(confirmation: OpenConfirmation) -> dict[str, Any]:
    return protocol.confirm_request_frame(
        confirmation_id=confirmation.confirmation_id,
        call_id=confirmation.call_id,
        tool=confirmation.tool,
        summary=confirmation.summary,
        expires_at=confirmation.expires_at,
    )


class _Sink:
    """Turns the engine's reports into frames for this tab and the session's group.

    An answer's first delta is sent at once; later deltas that arrive while
    the previous one is still being handed to the server are joined into one
    frame (a model that answers instantly costs two frames, not one per
    token). Every frame after the deltas waits until they are all sent.
    """

    __slots__ = ("consumer", "flight", "flusher", "pending", "streaming")

    def __init__(self, consumer: ChatConsumer) -> None:
        self.consumer = consumer
        self.flight = flights.Flight(
            consumer.channel_layer, consumer.group, getattr(consumer, "channel_name", "")
        )
        self.streaming: str | None = None
        self.pending: list[str] | None = None
        self.flusher: asyncio.Future[None] | None = None

    async def accepted(self, message: StoredMessage, *, new: bool) -> None:
        self.flight.accepted(message.id)
        frame = protocol.message_frame(message)
        await self.consumer.send_frame(frame)
        if new:
            await self.consumer.to_group(frame)

    async def typing(self, is_typing: bool) -> None:
        frame = protocol.typing_frame(is_typing, "assistant")
        await self.consumer.send_frame(frame)
        await self.consumer.to_group(frame)

    async def started(self, message_id: str, reply_to: str) -> None:
        self.flight.started(message_id, reply_to)
        await self.consumer.send_frame(protocol.stream_start_frame(message_id, reply_to))

    async def delta(self, message_id: str, text: str) -> None:
        self.flight.delta(text)
        if self.streaming != message_id:
            self.streaming = message_id
            await self.consumer.send_frame(protocol.stream_delta_frame(message_id, text))
        elif self.pending is not None:
            self.pending.append(text)  # a send is scheduled: ride along
        else:
            self.pending = [text]
            flusher = asyncio.ensure_future(self._flush(message_id, self.flusher))
            # A send that fails on a closed connection is not worth a log line.
            flusher.add_done_callback(lambda done: done.cancelled() or done.exception())
            self.flusher = flusher

    async def _flush(self, message_id: str, previous: asyncio.Future[None] | None) -> None:
        if previous is not None:
            await previous
        parts, self.pending = self.pending or [], None
        await self.consumer.send_frame(protocol.stream_delta_frame(message_id, "".join(parts)))

    async def _drain(self) -> None:
        """Wait until every delta reported so far is sent."""
        if self.flusher is not None:
            flusher, self.flusher = self.flusher, None
            await flusher

    async def finished(self, message: StoredMessage) -> None:
        await self._drain()
        frame = protocol.stream_end_frame(message)
        await self.consumer.send_frame(frame)
        if not await self.flight.finished(frame):
            await self.consumer.to_group(frame)

    async def tool_started(self, message_id: str, call_id: str, name: str, label: str) -> None:
        await self._drain()
        await self.consumer.send_frame(protocol.tool_start_frame(message_id, call_id, name, label))

    async def tool_ended(self, call_id: str, status: str) -> None:
        await self._drain()
        await self.consumer.send_frame(protocol.tool_end_frame(call_id, status))

    async def confirm_requested(self, confirmation: OpenConfirmation) -> None:
        await self._drain()
        await self._to_every_tab(confirm_request_frame(confirmation))

    async def confirm_closed(self, confirmation_id: str, outcome: str) -> None:
        metrics.confirmation_decided(outcome)
        await self._to_every_tab(protocol.confirm_closed_frame(confirmation_id, outcome))

    async def _to_every_tab(self, frame: dict[str, Any]) -> None:
        await self.consumer.send_frame(frame)
        # Once the tab has gone (its answer kept for others), the flight relays it.
        if not self.flight.relay(frame):
            await self.consumer.to_group(frame)
