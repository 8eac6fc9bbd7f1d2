"""One conversation turn, start to end (docs/engine.md, "A turn").

The consumer hands :func:`run_turn` a :class:`TurnRequest` and a
:class:`TurnSink`. A :class:`Turn` runs the steps of docs/engine.md in order,
one method each, and :meth:`Turn.run` reads as that list: accept the message
(or replay a re-send), limit, store, build the context and search the
knowledge, answer from the response cache, the model or a fallback, store the
answer and count it. The answer being written is one :class:`AnswerDraft`;
what the turn reads and writes goes through one :class:`TurnRecords` (the
database by default). Errors a client should hear about are raised as
:class:`~sophie_chat.exceptions.ChatError`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any, Protocol

import pydantic
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from sophie_chat import (
    backends,
    conf,
    handoff,
    locks,
    metrics,
    offers,
    protocol,
    quota,
    response_cache,
    store,
    unanswered,
)
from sophie_chat.context import ContextRequest, ContextSection, build_context
from sophie_chat.exceptions import AIUnavailable, RateLimited, ServiceUnavailable
from sophie_chat.handoff.phrases import asks_for_a_person
from sophie_chat.history import HistoryItem
from sophie_chat.knowledge.base import KnowledgeHit
from sophie_chat.knowledge.grounding import best_answer, sources_for
from sophie_chat.knowledge.query import SearchQuery, search_query
from sophie_chat.llm.base import (
    BaseLLMBackend,
    LLMError,
    LLMRequest,
    LLMTimeout,
    LLMToolCall,
    LLMUnavailable,
    PromptMessage,
    Usage,
)
from sophie_chat.models import ChatMessage, ToolCall
from sophie_chat.prompts import build_messages, prompt_tokens, tool_result_section
from sophie_chat.ratelimit.base import RateLimiterUnavailable
from sophie_chat.security import redact
from sophie_chat.store import AnswerRecord, SessionState, StoredMessage, StoredQuestion
from sophie_chat.tokens import count_tokens
from sophie_chat.tools import confirmations
from sophie_chat.tools import records as tool_records
from sophie_chat.tools import registry as tool_registry
from sophie_chat.tools.base import Tool, ToolArgumentsInvalid, ToolContext, ToolError
from sophie_chat.tools.records import OpenConfirmation

logger = logging.getLogger(__name__)

COMPLETE = ChatMessage.Status.COMPLETE
INTERRUPTED = ChatMessage.Status.INTERRUPTED
FAILED = ChatMessage.Status.FAILED


@dataclass(frozen=True, slots=True)
class Visitor:
    """Who sent the message. ``user`` is the Django user (or ``AnonymousUser``)."""

    user: Any
    user_id: int | None
    user_type: str
    ip: str | None


@dataclass(frozen=True, slots=True)
class TurnRequest:
    session: SessionState
    visitor: Visitor
    content: str
    client_message_id: str | None
    locale: str
    #: False when the message cannot have been stored before (its session was
    #: started on the same connection, which has not sent this client id yet):
    #: the turn then skips looking for a re-send. Storing stays idempotent.
    may_be_resent: bool = True
    #: Offer the model the ``TOOLS`` the visitor may use (an evaluation does not).
    use_tools: bool = True
    #: Hand the conversation to a person when the visitor asks for one in so many
    #: words, with ``HANDOFF`` on (an evaluation does not).
    may_hand_over: bool = True


class TurnSink(Protocol):
    """Where the engine reports a turn, in order, while it runs.

    The consumer's sink turns the reports into frames for the visitor's tab
    and the conversation's other tabs; any object with these coroutines can
    take its place (the engine tests record them).
    """

    async def accepted(self, message: StoredMessage, *, new: bool) -> None:
        """The user message is stored (``new``) or was stored before (a re-send)."""

    async def typing(self, is_typing: bool) -> None:
        """The assistant is preparing an answer (or stopped)."""

    async def started(self, message_id: str, reply_to: str) -> None:
        """The answer ``message_id`` begins."""

    async def delta(self, message_id: str, text: str) -> None:
        """The next piece of the answer."""

    async def finished(self, message: StoredMessage) -> None:
        """The answer is complete and stored."""

    async def tool_started(self, message_id: str, call_id: str, name: str, label: str) -> None:
        """A tool runs for the answer ``message_id`` (``label``: what to show meanwhile)."""

    async def tool_ended(self, call_id: str, status: str) -> None:
        """The tool call finished: ``ok``, ``error``, ``refused``, ``cancelled`` or ``timeout``."""

    async def confirm_requested(self, confirmation: OpenConfirmation) -> None:
        """A tool waits for the visitor's confirmation (every tab of the conversation)."""

    async def confirm_closed(self, confirmation_id: str, outcome: str) -> None:
        """Nobody confirmed in time (``expired``); every tab removes its buttons.

        Accepted and declined confirmations are announced by the connection
        that received the answer.
        """


class TurnRecords(Protocol):
    """Everything a turn reads from and writes to storage, in one place.

    :class:`DatabaseRecords` keeps conversations, token budgets, analytics
    and unanswered questions in the database; another implementation (one
    that keeps nothing, say) runs the same turn without leaving a trace.
    """

    async def find_resend(self, session_id: str, client_message_id: str) -> StoredQuestion | None:
        """The stored message a re-send repeats, with its answer or its history; or None."""

    async def store_question(
        self, session_id: str, content: str, client_message_id: str | None
    ) -> StoredQuestion:
        """Store the visitor's message, idempotently on ``client_message_id``."""

    async def store_answer(self, record: AnswerRecord) -> StoredMessage:
        """Store an answer and count it in the conversation's analytics."""

    async def count_event(self, session_id: str, counter: str) -> None:
        """Add one to an analytics counter (``rate_limited`` or ``errors``)."""

    async def tokens_left(self, budget: quota.Budget) -> int | None:
        """What is left of the visitor's daily token budget (None: no budget)."""

    async def spend_tokens(self, budget: quota.Budget, tokens: int) -> None:
        """Count an answer's tokens against the budget."""

    async def record_unanswered(
        self, question: str, *, locale: str, reason: str, session_id: str
    ) -> None:
        """Count a question the knowledge base could not answer."""

    async def open_handoff(self, session_id: str) -> handoff.OpenHandoff | None:
        """The conversation's waiting or active handoff to a person (docs/handoff.md)."""


class DatabaseRecords:
    """The turn's records in the database (:mod:`~sophie_chat.store`, quota, unanswered)."""

    async def find_resend(self, session_id: str, client_message_id: str) -> StoredQuestion | None:
        return await store.find_by_client_id(session_id, client_message_id)

    async def store_question(
        self, session_id: str, content: str, client_message_id: str | None
    ) -> StoredQuestion:
        return await store.store_user_message(session_id, content, client_message_id)

    async def store_answer(self, record: AnswerRecord) -> StoredMessage:
        return await store.store_answer(record)

    async def count_event(self, session_id: str, counter: str) -> None:
        await store.count_event(session_id, counter)

    def __init__(self) -> None:
        #: Tokens held for this turn's answer, and the day they were held on.
        self.held: int = 0
        self.held_on = quota.today()

    async def tokens_left(self, budget: quota.Budget) -> int | None:
        # Held, not only read: parallel turns of one visitor cannot spend it twice.
        left, self.held_on = await quota.hold(budget, conf.get("MAX_ANSWER_TOKENS"))
        self.held = max(left or 0, 0)
        return left

    async def spend_tokens(self, budget: quota.Budget, tokens: int) -> None:
        held, self.held = self.held, 0
        await quota.settle(budget, held, self.held_on, tokens)

    async def release_tokens(self, budget: quota.Budget) -> None:
        """Give back what was held for an answer that cost nothing (a cache hit, a refusal)."""
        if self.held:
            await self.spend_tokens(budget, 0)

    async def record_unanswered(
        self, question: str, *, locale: str, reason: str, session_id: str
    ) -> None:
        await unanswered.record(question, locale=locale, reason=reason, session_id=session_id)

    async def open_handoff(self, session_id: str) -> handoff.OpenHandoff | None:
        return await handoff.open_handoff(session_id)


@dataclass(slots=True)
class AnswerDraft:
    """The answer being written: what the visitor was sent so far, and what will be stored."""

    session_id: str
    #: The question's id.
    reply_to: str
    model: str
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    #: ``time.monotonic()`` when the turn began to answer.
    started_at: float = field(default_factory=time.monotonic)
    parts: list[str] = field(default_factory=list)
    #: The length of :attr:`content`, kept as it grows (``MAX_ANSWER_CHARS``).
    chars: int = 0
    sources: list[dict[str, str]] = field(default_factory=list)
    #: The model's usage, added up over its rounds; None when it reported none.
    usage: Usage | None = None
    first_token_ms: int | None = None
    cached: bool = False
    fallback: bool = False
    #: The answer says it does not know (see :meth:`Turn.check_declined`).
    declined: bool = False
    #: The sources the backend named (``LLMChunk.sources``); None when it did not.
    named_sources: tuple[KnowledgeHit, ...] | None = None
    #: Further metadata: ``error``, ``interrupted``, ``tools``.
    extra: dict[str, Any] = field(default_factory=dict)
    #: ``stream_start`` was sent (by the first text, or the first tool call).
    announced: bool = False

    def used_tool(self, name: str, status: str) -> None:
        """Note a tool call in ``metadata.tools``."""
        self.extra.setdefault("tools", []).append({"name": name, "status": status})

    @property
    def content(self) -> str:
        return "".join(self.parts)

    def add_usage(self, usage: Usage) -> None:
        """Add one model round's usage."""
        if self.usage is None:
            self.usage = usage
        else:
            self.usage = Usage(
                prompt_tokens=self.usage.prompt_tokens + usage.prompt_tokens,
                completion_tokens=self.usage.completion_tokens + usage.completion_tokens,
            )

    def record(self, status: str, *, cache_key: str = "") -> AnswerRecord:
        """The answer as stored, with ``status`` (``cache_key``: the cache entry it fills)."""
        return AnswerRecord(
            id=self.id,
            session_id=self.session_id,
            reply_to=self.reply_to,
            content=self.content,
            status=status,
            metadata={
                "sources": self.sources,
                "cached": self.cached,
                "fallback": self.fallback,
                "declined": self.declined,
                "model": self.model,
                **self.extra,
            },
            first_token_ms=self.first_token_ms,
            total_ms=_ms_since(self.started_at),
            prompt_tokens=self.usage.prompt_tokens if self.usage else None,
            completion_tokens=self.usage.completion_tokens if self.usage else None,
            cache_key=cache_key,
        )


@dataclass(frozen=True, slots=True)
class Grounds:
    """What an answer is built on."""

    question: StoredMessage
    history: list[HistoryItem]
    context: list[ContextSection]
    hits: list[KnowledgeHit]
    #: The response cache key, when the question may be answered from the cache.
    cache_key: str | None
    #: What the knowledge was searched for: the question, with the earlier
    #: question a follow-up leans on (:func:`turn_search_query`).
    query: str = ""
    #: When no entry answers the question: what the visitor can be offered
    #: instead (:mod:`sophie_chat.offers`).
    offers: tuple[offers.Offer, ...] = ()

    @property
    def best(self) -> KnowledgeHit | None:
        """The entry good enough to answer with (:func:`best_answer`); None: nothing answers."""
        return best_answer(self.hits)


async def run_turn(
    request: TurnRequest, sink: TurnSink, records: TurnRecords | None = None
) -> None:
    """Run one turn; ``records`` defaults to the database.

    Turns of one session run one at a time (see :mod:`sophie_chat.locks`).
    """
    async with locks.turn_lock(request.session.id):
        await Turn(request, sink, records or DatabaseRecords()).run()


class Turn:
    """One turn's steps; :meth:`run` calls them in the order of docs/engine.md."""

    def __init__(self, request: TurnRequest, sink: TurnSink, records: TurnRecords) -> None:
        self.request = request
        self.sink = sink
        self.records = records
        self.session_id = request.session.id
        self.locale = request.locale or request.session.locale
        self.reply_to = request.client_message_id
        self.budget = quota.budget_for(request.visitor.user_id, request.visitor.ip)
        #: Read once, when the budget is checked; it caps the answer's length.
        self.tokens_left: int | None = None
        #: The knowledge search, started as early as the question's text is known.
        self.search: asyncio.Future[list[KnowledgeHit]] | None = None
        #: What :attr:`search` looks for.
        self.searched_for: str = ""
        #: What the answer is built on, once known (step 5).
        self.grounds: Grounds | None = None
        #: The tools offered to the model (step 5), by name.
        self.tools: dict[str, Tool] = {}
        #: Seconds spent waiting for the visitor to confirm (not counted in TURN_TIMEOUT).
        self.confirming_seconds = 0.0

    async def run(self) -> None:
        """Steps 1 to 3 accept the question; 4 to 9 answer it."""
        try:
            question = await self.accept()  # a re-send, or rate limit, budget, store
            if await self.with_a_person(question):
                return
            if question.answer is not None:
                await self.replay(question.answer)
                return
            llm = backends.llm()
            draft = AnswerDraft(self.session_id, question.message.id, model=llm.model_name)
            if self.wants_a_person(question):
                await self.hand_over(draft)
                return
            self.knowledge_search(turn_search_query(question))
            async with self.typing_indicator():
                grounds = await self.ground(question, llm.model_name)  # steps 4 and 5
                self.tools = await self.offer_tools(llm)
                draft.sources = answer_sources(sources_for(grounds.hits, locale=self.locale))
                # An answer that might have come from a tool is never the cache's.
                if not self.tools and await self.answer_from_cache(grounds, draft):  # step 6
                    return
                request = self.model_request(grounds)
                try:
                    request = await self.ask_model(llm, request, draft)  # step 7
                except LLMError as error:
                    if draft.parts or draft.usage:
                        # What the model said before failing was paid for.
                        await self.spend_tokens(request.messages, draft)
                    await self.fall_back(grounds, draft, error)  # step 8
                else:
                    await self.finish(grounds, draft, request)  # step 9
        finally:
            # A search nobody waits for any more (a replay, a failure) is dropped.
            if self.search is not None:
                self.search.cancel()
            release = getattr(self.records, "release_tokens", None)
            if release is not None and self.budget:
                await asyncio.shield(release(self.budget))

    # -- steps 1 to 3: accept or replay, limit, store --------------------------------

    async def accept(self) -> StoredQuestion:
        """The question to answer, stored and acknowledged; or a re-send's stored answer."""
        resent = await self.find_resend()
        if resent is not None:
            await self.sink.accepted(resent.message, new=False)
            if resent.answer is None:
                # Stored but never answered (a crash, a visitor who left before the
                # first token): answered now, by a new model call, so limited like one.
                await self.check_rate_limit()
                await self.check_budget()
            return resent
        await self.check_rate_limit()
        # Before anything is stored: a spent budget refuses the message like a rate limit.
        await self.check_budget()
        question = await self.store_question()
        await self.sink.accepted(question.message, new=question.new)
        return question

    async def find_resend(self) -> StoredQuestion | None:
        if not (self.request.client_message_id and self.request.may_be_resent):
            return None
        return await self.records.find_resend(self.session_id, self.request.client_message_id)

    async def check_rate_limit(self) -> None:
        """Raise :class:`RateLimited` (or :class:`ServiceUnavailable`, the limiter down)."""
        limiter = backends.rate_limiter()
        for key in rate_limit_keys(self.session_id, self.request.visitor):
            try:
                decision = await limiter.hit(key)
            except RateLimiterUnavailable as exc:
                if conf.get("RATE_LIMIT_FAIL_OPEN"):
                    logger.warning(
                        "Rate limiter unavailable; message allowed (RATE_LIMIT_FAIL_OPEN)",
                        exc_info=exc,
                        extra={"session_id": self.session_id},
                    )
                    return
                logger.error(
                    "Rate limiter unavailable; message refused",
                    exc_info=exc,
                    extra={"session_id": self.session_id},
                )
                raise ServiceUnavailable(reply_to=self.reply_to) from exc
            if not decision.allowed:
                logger.info(
                    "Rate limited",
                    extra={
                        "session_id": self.session_id,
                        "key_kind": key.split(":", 1)[0],
                        "retry_after": decision.retry_after,
                    },
                )
                await self.records.count_event(self.session_id, "rate_limited")
                raise RateLimited(retry_after=decision.retry_after, reply_to=self.reply_to)

    async def check_budget(self) -> None:
        """Raise :class:`~sophie_chat.exceptions.QuotaExceeded` when the daily budget is spent."""
        self.tokens_left = await self.records.tokens_left(self.budget)
        quota.check(self.budget, self.tokens_left, reply_to=self.reply_to)

    async def store_question(self) -> StoredQuestion:
        """Store the message; the knowledge is searched meanwhile.

        The search needs only the text, and the two wait on different connections.
        """
        self.knowledge_search(self.request.content)
        question = await self.records.store_question(
            self.session_id, self.request.content, self.request.client_message_id
        )
        logger.info(
            "Message stored",
            extra={
                "session_id": self.session_id,
                "message_id": question.message.id,
                "text": _log_text(self.request.content),
            },
        )
        if not question.new and self.search is not None:
            # Stored before, meanwhile: its stored text is what is answered (or replayed).
            self.search.cancel()
            self.search = None
        return question

    async def with_a_person(self, question: StoredQuestion) -> bool:
        """Whether a person holds the conversation: then Sophie stays quiet.

        While a handoff is open (waiting or active), the stored message is
        also sent to the inbox; only an active one keeps Sophie from answering.
        """
        if not handoff.enabled():
            return False
        found = await self.records.open_handoff(self.session_id)
        if found is None:
            return False
        if question.new:
            await handoff.visitor_message(found.id, self.session_id, question.message)
        return found.held_by_person

    def wants_a_person(self, question: StoredQuestion) -> bool:
        """The visitor asked for a person in so many words (docs/handoff.md)."""
        return (
            self.request.may_hand_over
            and handoff.enabled()
            and asks_for_a_person(question.message.content)
        )

    async def hand_over(self, draft: AnswerDraft) -> None:
        """The visitor asked for a person in so many words: ask for one, and say so."""
        found = await handoff.request(self.session_id, reason=self.request.content[:200])
        state = (await handoff.state_frame(found))["state"]
        draft.extra["handoff"] = state
        if state == "unavailable":
            text = _(
                "Our team is not available right now. You can leave a message with your "
                "contact details, and they will get back to you."
            )
        else:
            text = _(
                "I'm bringing in a person from our team. Please stay here: they will join "
                "this conversation shortly."
            )
        await self.say(draft, text)
        await self.sink.finished(await self.records.store_answer(draft.record(COMPLETE)))

    async def replay(self, answer: StoredMessage) -> None:
        """Send a re-send's stored answer again, through the one path clients know."""
        await self.sink.started(answer.id, answer.reply_to or "")
        if answer.content:
            await self.sink.delta(answer.id, answer.content)
        await self.sink.finished(answer)

    # -- steps 4 and 5: context and knowledge ----------------------------------------

    def knowledge_search(self, query: str) -> asyncio.Future[list[KnowledgeHit]]:
        """The search for ``query``: the one begun for the same query, or a new one.

        The search begun while the question is stored has only its text; a
        follow-up, once the conversation is known, searches with the earlier
        question it leans on instead (a first question searches the same).
        """
        if self.search is not None and self.searched_for != query:
            self.search.cancel()
            self.search = None
        if self.search is None:
            self.search = asyncio.ensure_future(search_knowledge(query, self.locale))
            self.searched_for = query
        return self.search

    @asynccontextmanager
    async def typing_indicator(self) -> AsyncIterator[None]:
        """``typing`` on while the answer is prepared (its ``stream_start`` ends it).

        A turn that ends without an answer turns it off itself.
        """
        announced = False
        if conf.get("ENABLE_TYPING_INDICATOR"):
            await self.sink.typing(True)
            announced = True
        try:
            yield
        except BaseException:
            if announced:
                await asyncio.shield(self.sink.typing(False))
            raise

    async def ground(self, question: StoredQuestion, model_name: str) -> Grounds:
        """The context and the knowledge hits; the cache key when the cache may answer.

        When no hit answers the question, also the offers of the moment.
        """
        visitor = self.request.visitor
        session = self.request.session
        context = await build_context(
            ContextRequest(
                user=visitor.user,
                user_id=visitor.user_id,
                user_type=visitor.user_type,
                session_id=self.session_id,
                locale=self.locale,
                page=session.context.get("page") or {},
                session_context=session.context,
                question=question.message.content,
            )
        )
        query = turn_search_query(question)
        hits = await self.knowledge_search(query)
        key = await self.cache_key(question, context, model_name)
        available: tuple[offers.Offer, ...] = ()
        if best_answer(hits) is None:
            available = await offers.available(
                offers.OfferContext(
                    locale=self.locale, session_id=self.session_id, user_id=visitor.user_id
                )
            )
        self.grounds = Grounds(
            question.message, question.history, context, hits, key, query, available
        )
        return self.grounds

    async def cache_key(
        self, question: StoredQuestion, context: list[ContextSection], model_name: str
    ) -> str | None:
        if not response_cache.enabled():
            return None
        prior_user_messages = sum(1 for item in question.history if item.role == "user")
        if not response_cache.is_cacheable(
            prior_user_messages=prior_user_messages, context=context
        ):
            return None
        try:
            version = await backends.knowledge().version()
        except Exception:
            logger.warning("Knowledge version unavailable; answer not cached", exc_info=True)
            return None
        return response_cache.cache_key(
            question=question.message.content,
            locale=self.locale,
            knowledge_version=version,
            user_type=self.request.visitor.user_type,
            context=context,
            model=model_name,
        )

    async def offer_tools(self, llm: BaseLLMBackend) -> dict[str, Tool]:
        """The ``TOOLS`` this visitor may use, by name; none for a backend without tools."""
        if not (self.request.use_tools and llm.supports_tools and tool_registry.paths()):
            return {}
        try:
            offered = await tool_registry.offered(self.tool_context())
        except tool_registry.InvalidToolError:
            # The system checks (E020 to E024) say what is wrong; the visitor is answered.
            logger.exception("TOOLS is misconfigured; no tool offered")
            return {}
        return {found.name: found for found in offered}

    def configured_tool(self, name: str) -> Tool | None:
        """A tool of ``TOOLS`` the visitor was not offered (a call of it is refused)."""
        try:
            return tool_registry.get(name) if tool_registry.paths() else None
        except tool_registry.InvalidToolError:
            return None

    def tool_context(self, call_id: str = "") -> ToolContext:
        visitor = self.request.visitor
        return ToolContext(
            user=visitor.user,
            user_id=visitor.user_id,
            session_id=self.session_id,
            locale=self.locale,
            page=self.request.session.context.get("page") or {},
            user_type=visitor.user_type,
            call_id=call_id,
        )

    # -- steps 6 to 9: answer from the cache, the model or a fallback; store, count -----

    async def announce(self, draft: AnswerDraft) -> None:
        """Send ``stream_start`` once, before the answer's first text or tool call."""
        if not draft.announced:
            draft.announced = True
            await self.sink.started(draft.id, draft.reply_to)

    async def say(self, draft: AnswerDraft, text: str) -> None:
        """Send the next piece of the answer; the first one starts it."""
        if draft.first_token_ms is None:
            draft.first_token_ms = _ms_since(draft.started_at)
        await self.announce(draft)
        draft.parts.append(text)
        draft.chars += len(text)
        await self.sink.delta(draft.id, text)

    async def answer_from_cache(self, grounds: Grounds, draft: AnswerDraft) -> bool:
        """Answer with the cached answer to the same standalone question, if there is one."""
        if grounds.cache_key is None:
            return False
        cached = await response_cache.get(grounds.cache_key)
        if cached is None:
            return False
        draft.cached, draft.model, draft.sources = True, cached.model, cached.sources
        draft.usage = Usage(prompt_tokens=0, completion_tokens=0)
        await self.say(draft, cached.content)
        self.check_declined(draft)
        await self.sink.finished(await self.records.store_answer(draft.record(COMPLETE)))
        await self.note_unanswered(grounds, draft)
        return True

    def model_request(self, grounds: Grounds) -> LLMRequest:
        """The prompt (docs/prompts.md), with what a backend without a model needs."""
        messages = build_messages(
            locale=self.locale,
            question=grounds.question.content,
            history=grounds.history,
            knowledge=grounds.hits,
            context=grounds.context,
            answered=grounds.best is not None,
            offers=[offer.text for offer in grounds.offers],
            tools=bool(self.tools),
        )
        return LLMRequest(
            messages=messages,
            locale=self.locale,
            knowledge=tuple(grounds.hits),
            max_tokens=_max_tokens(self.tokens_left),
            offers=grounds.offers,
        )

    async def ask_model(
        self, llm: BaseLLMBackend, request: LLMRequest, draft: AnswerDraft
    ) -> LLMRequest:
        """Stream the model's answer to the visitor; run the tools it calls, in rounds.

        Each round of the model has ``RESPONSE_TIMEOUT_SECONDS``; the whole
        answer, tools included, ``TURN_TIMEOUT`` (the visitor's time to
        confirm not counted). The model may call tools in ``TOOL_ROUNDS``
        rounds; the round after the last is offered none, so it answers.
        Returns the last request. Raises :class:`LLMError`
        (:class:`LLMTimeout` when the time is up). When the visitor leaves
        (the turn is cancelled), what was said is kept.
        """
        started = time.monotonic()
        rounds = conf.get("TOOL_ROUNDS")
        try:
            for number in range(rounds + 1):
                offered = self.tools if number < rounds else {}
                request = replace(
                    request, tools=tuple(found.definition() for found in offered.values())
                )
                said_before = len(draft.parts)
                calls = await self.timed_round(llm, request, draft, started)
                # Calls of tools it was not offered are refused, but in the last round.
                if not calls or number == rounds:
                    if number and not draft.content.strip():
                        raise LLMUnavailable("the model answered its tools' results with nothing")
                    return request
                said = "".join(draft.parts[said_before:])
                request = await self.use_tools(calls, said, request, draft, started)
            return request  # pragma: no cover - the last round offers no tools
        except asyncio.CancelledError:
            await asyncio.shield(self.keep_interrupted(request, draft))
            raise

    def seconds_left(self, started: float) -> float:
        """What is left of ``TURN_TIMEOUT``, the time spent confirming not counted."""
        spent = time.monotonic() - started - self.confirming_seconds
        return conf.get("TURN_TIMEOUT") - spent

    async def timed_round(
        self, llm: BaseLLMBackend, request: LLMRequest, draft: AnswerDraft, started: float
    ) -> list[LLMToolCall]:
        """One round within ``RESPONSE_TIMEOUT_SECONDS`` and what is left of the turn's time."""
        seconds = min(conf.get("RESPONSE_TIMEOUT_SECONDS"), self.seconds_left(started))
        if seconds <= 0:
            raise LLMTimeout(f"no complete answer within {conf.get('TURN_TIMEOUT')} s")
        try:
            async with asyncio.timeout(seconds):
                return await self.model_round(llm, request, draft)
        except TimeoutError as exc:
            raise LLMTimeout(f"no complete answer within {seconds:g} s") from exc

    async def model_round(
        self, llm: BaseLLMBackend, request: LLMRequest, draft: AnswerDraft
    ) -> list[LLMToolCall]:
        """One call of the model: its text relayed as it comes, its usage added up.

        Returns the tool calls it made (none: it answered).
        """
        calls: list[LLMToolCall] = []
        stream = llm.stream(request)
        cap = conf.get("MAX_ANSWER_CHARS")
        try:
            async for chunk in stream:
                if not isinstance(chunk.delta, str):
                    # Whatever the backend: a model's output is data, checked like input.
                    raise LLMUnavailable("The model sent an answer that is not text.")
                text = protocol.clean_text(chunk.delta) if chunk.delta else ""
                if draft.chars + len(text) > cap:
                    # An endless answer is cut, shown and stored as cut; the stream is closed.
                    if draft.chars < cap:
                        await self.say(draft, text[: cap - draft.chars])
                    draft.extra["truncated"] = True
                    return []  # and no tool calls: the answer is over
                if text:
                    await self.say(draft, text)
                if chunk.usage is not None:
                    draft.add_usage(chunk.usage)
                if chunk.model:
                    draft.model = chunk.model
                if chunk.sources is not None:
                    # The backend knows what it used (the offline one: its one entry).
                    draft.named_sources = tuple(chunk.sources)
                    draft.sources = answer_sources(list(chunk.sources))
                calls.extend(chunk.tool_calls)
        finally:
            await stream.aclose()
        return calls

    # -- step 7, with tools: run the calls, give the model their results ----------------

    async def use_tools(
        self,
        calls: list[LLMToolCall],
        said: str,
        request: LLMRequest,
        draft: AnswerDraft,
        started: float,
    ) -> LLMRequest:
        """Run one round's calls concurrently; the next request carries their results."""
        await self.announce(draft)
        outcomes = await asyncio.gather(
            *(self.call_tool(call, draft, started) for call in calls)
        )
        results = [(status, text) for _known, status, text in outcomes]
        for call, (known, status, _text) in zip(calls, outcomes, strict=True):
            if known:  # in the order the model called them
                draft.used_tool(call.name, status)
        messages = (
            *request.messages,
            PromptMessage(role="assistant", content=said, tool_calls=tuple(calls)),
            *(
                PromptMessage(
                    role="tool",
                    content=tool_result_section(call.name, status, text),
                    tool_call_id=call.id,
                )
                for call, (status, text) in zip(calls, results, strict=True)
            ),
        )
        return replace(request, messages=messages)

    async def call_tool(
        self, call: LLMToolCall, draft: AnswerDraft, started: float
    ) -> tuple[bool, str, str]:
        """One call, checked again whatever the model was offered.

        Returns whether the tool exists, the call's status and the result for the model.

        Refused when the visitor may not use the tool; the arguments
        validated; confirmed by the visitor when the tool asks; run within
        its timeout. Reported as ``tool_start``/``tool_end``, recorded as a
        :class:`~sophie_chat.models.ToolCall`. Never raises (but when cancelled).
        """
        found = self.tools.get(call.name) or self.configured_tool(call.name)
        if found is None:
            # No frames: nothing runs, and the name is the model's invention.
            await self.record_call(call, None, "error", draft, error="unknown tool")
            known = ", ".join(self.tools) or "none"
            return False, "error", f"There is no tool named {call.name!r}. Tools: {known}."
        await self.sink.tool_started(draft.id, call.id, found.name, self.tool_label(found))
        status, result = await self.checked_call(found, call, draft, started)
        await self.sink.tool_ended(call.id, status)
        return True, status, result

    async def checked_call(
        self, found: Tool, call: LLMToolCall, draft: AnswerDraft, started: float
    ) -> tuple[str, str]:
        context = self.tool_context(call.id)
        # Enforced here too: the model may name a tool it was not offered.
        if found.name not in self.tools or not await found.allows(context):
            await self.record_call(
                call, found, "refused", draft, error="not allowed for this visitor"
            )
            return "refused", "This visitor may not use this tool."
        try:
            arguments = found.validate(call.arguments)
        except ToolArgumentsInvalid as invalid:
            await self.record_call(
                call, found, "error", draft, error=f"invalid arguments: {invalid}"
            )
            return "error", f"Invalid arguments: {invalid}. Call it again with valid ones."
        if found.confirm:
            record_id, outcome = await self.confirm(found, call, arguments, draft)
            if outcome != ToolCall.Confirmation.ACCEPTED:
                why = "declined" if outcome == ToolCall.Confirmation.DECLINED else "did not answer"
                self.log_call(found, "cancelled", arguments, 0)
                return "cancelled", f"Not done: the visitor {why}. Do not call it again unasked."
        else:
            record_id = await tool_records.start_call(
                session_id=self.session_id,
                answer_id=draft.id,
                call_id=call.id,
                name=found.name,
                arguments=found.redacted(arguments),
                status=ToolCall.Status.RUNNING,
            )
        status, result, error, ms = await self.run_tool(found, arguments, context, started)
        await tool_records.finish_call(record_id, status=status, error=error, duration_ms=ms)
        self.log_call(found, status, arguments, ms)
        return status, result

    async def confirm(
        self, found: Tool, call: LLMToolCall, arguments: dict[str, Any], draft: AnswerDraft
    ) -> tuple[str, str]:
        """Ask every tab of the conversation; wait for the first valid answer or the expiry.

        Returns the call's record id and the outcome (``accepted``,
        ``declined`` or ``expired``). The decision is the database's, so the
        tool runs at most once whoever answers and however often.
        """
        seconds = conf.get("CONFIRM_TIMEOUT")
        expires_at = timezone.now() + timedelta(seconds=seconds)
        with translation.override(self.locale):
            summary = found.summary_text(arguments)
        record_id = await tool_records.start_call(
            session_id=self.session_id,
            answer_id=draft.id,
            call_id=call.id,
            name=found.name,
            arguments=found.redacted(arguments),
            status=ToolCall.Status.PENDING,
            summary=summary,
            expires_at=expires_at,
        )
        confirmations.expect(record_id)
        waiting_since = time.monotonic()
        try:
            await self.sink.confirm_requested(
                OpenConfirmation(record_id, call.id, found.name, summary, expires_at)
            )
            outcome = await confirmations.wait(record_id, seconds)
        except asyncio.CancelledError:
            # The visitor left: nobody may confirm a call no turn will run.
            await asyncio.shield(self.close_confirmation(record_id))
            raise
        finally:
            self.confirming_seconds += time.monotonic() - waiting_since
        if outcome == ToolCall.Confirmation.EXPIRED:
            await self.sink.confirm_closed(record_id, outcome)
        return record_id, outcome

    async def close_confirmation(self, record_id: str) -> None:
        if await confirmations.cancel(record_id) == ToolCall.Confirmation.EXPIRED:
            try:
                await self.sink.confirm_closed(record_id, ToolCall.Confirmation.EXPIRED)
            except Exception:
                # The leaving tab's connection may be gone; its other tabs heard or will
                # find nothing open when they reconnect.
                logger.info("Could not announce the closed confirmation", exc_info=True)

    async def run_tool(
        self, found: Tool, arguments: dict[str, Any], context: ToolContext, started: float
    ) -> tuple[str, str, str, int]:
        """Run the function within its timeout: ``(status, result, error, duration_ms)``."""
        seconds = min(found.timeout or conf.get("TOOL_TIMEOUT"), self.seconds_left(started))
        began = time.monotonic()
        try:
            async with asyncio.timeout(max(seconds, 0)):
                value = await found.run(arguments, context)
        except TimeoutError:
            return "timeout", "The tool did not answer in time.", "timeout", _ms_since(began)
        except ToolError as failure:
            return "error", f"The tool failed: {failure}", str(failure), _ms_since(began)
        except Exception as exc:
            logger.error(
                "Tool %s raised %s",
                found.name,
                type(exc).__name__,
                exc_info=exc,
                extra={"session_id": self.session_id, "tool": found.name},
            )
            return "error", "The tool failed.", type(exc).__name__, _ms_since(began)
        return "ok", _result_text(value), "", _ms_since(began)

    async def record_call(
        self, call: LLMToolCall, found: Tool | None, status: str, draft: AnswerDraft, *, error: str
    ) -> None:
        """Record a call that did not run (unknown, refused, invalid arguments)."""
        await tool_records.start_call(
            session_id=self.session_id,
            answer_id=draft.id,
            call_id=call.id,
            name=found.name if found else call.name,
            arguments={},
            status=status,
            error=error,
        )
        if found is not None:
            self.log_call(found, status, None, None)
        else:
            logger.info(
                "Unknown tool called",
                extra={"session_id": self.session_id, "tool_status": status},
            )

    def log_call(
        self, found: Tool, status: str, arguments: dict[str, Any] | None, ms: int | None
    ) -> None:
        extra: dict[str, Any] = {
            "session_id": self.session_id,
            "tool": found.name,
            "tool_status": status,
            "duration_ms": ms,
        }
        # Argument values are the visitor's data: logged only when the tool allows it.
        if found.log_arguments and arguments is not None:
            extra["arguments"] = found.redacted(arguments)
        metrics.tool_called(found.name, status)
        logger.info("Tool %s: %s", found.name, status, extra=extra)

    def tool_label(self, found: Tool) -> str:
        with translation.override(self.locale):
            return str(found.label) if found.label else _("Working on it…")

    async def keep_interrupted(self, request: LLMRequest, draft: AnswerDraft) -> None:
        """The visitor left mid-answer: store what was said, marked interrupted; count it."""
        if draft.parts:
            draft.extra["interrupted"] = True
            await self.records.store_answer(draft.record(INTERRUPTED))
        await self.spend_tokens(request.messages, draft)
        logger.info(
            "Answer interrupted", extra={"session_id": self.session_id, "message_id": draft.id}
        )

    async def fall_back(self, grounds: Grounds, draft: AnswerDraft, error: LLMError) -> None:
        """The model failed: answer from the knowledge base or ``FALLBACK_MESSAGE``.

        With ``FALLBACK_RESPONSES`` off, raise :class:`AIUnavailable` (after
        storing what the model said, marked failed).
        """
        _log_model_failure(self.session_id, error)
        metrics.model_error(type(error).__name__)
        await self.records.count_event(self.session_id, "errors")
        draft.extra["error"] = type(error).__name__
        if not conf.get("FALLBACK_RESPONSES"):
            if draft.parts:
                await self.sink.finished(await self.records.store_answer(draft.record(FAILED)))
            raise AIUnavailable(reply_to=self.reply_to or grounds.question.id) from error
        best = grounds.best
        text = fallback_text(grounds.hits, self.locale, grounds.offers)
        await self.say(draft, "\n\n" + text if draft.parts else text)
        draft.fallback = True
        draft.sources = answer_sources([best]) if best is not None else []
        await self.sink.finished(await self.records.store_answer(draft.record(COMPLETE)))
        await self.note_unanswered(grounds, draft)

    async def finish(self, grounds: Grounds, draft: AnswerDraft, request: LLMRequest) -> None:
        """Store the model's answer, fill the cache, count its tokens; then ``stream_end``."""
        self.check_declined(draft)
        # An answer the model could have built from a tool's result is the visitor's own.
        key = grounds.cache_key if not self.tools else None
        stored = await self.records.store_answer(draft.record(COMPLETE, cache_key=key or ""))
        logger.info(
            "Answer stored",
            extra={
                "session_id": self.session_id,
                "message_id": draft.id,
                "model": draft.model,
                "first_token_ms": draft.first_token_ms,
                "total_ms": _ms_since(draft.started_at),
                "text": _log_text(stored.content),
            },
        )
        # "I don't know" is not worth repeating: the knowledge base may have the
        # answer by the next time, and the offers after it hold for now only.
        if key is not None and stored.content and not draft.declined:
            answer = response_cache.CachedAnswer(stored.content, draft.sources, draft.model)
            await response_cache.set(key, answer)
        # Counted before stream_end: the visitor's next message, in any of their
        # conversations, must find the budget spent.
        await self.spend_tokens(request.messages, draft)
        await self.sink.finished(stored)
        await self.note_unanswered(grounds, draft)

    async def spend_tokens(self, messages: Sequence[PromptMessage], draft: AnswerDraft) -> None:
        """Count what the answer cost against the daily budget, when there is one."""
        if self.budget:
            await self.records.spend_tokens(
                self.budget, _tokens_spent(messages, draft.usage, draft.content)
            )

    def check_declined(self, draft: AnswerDraft) -> None:
        """Mark an answer that says it does not know; it then cites nothing.

        Declined: a backend that names the entries it used named none (the
        offline backend's "I don't know"), or the answer says it does not
        know in words :func:`~sophie_chat.unanswered.says_unsure` recognises
        (the system prompt asks a model to begin so).
        """
        named_none = draft.named_sources is not None and not draft.named_sources
        draft.declined = named_none or unanswered.says_unsure(draft.content)
        if draft.declined:
            draft.sources = []

    async def note_unanswered(self, grounds: Grounds, draft: AnswerDraft) -> None:
        """Record the question when no entry answers it or the answer declined.

        A follow-up is recorded with the earlier question it leans on, so
        staff can read what was asked.
        """
        reason = unanswered.reason_for(
            grounds.question.content,
            searched=bool(conf.get("KNOWLEDGE_RESULTS")),
            found=grounds.best is not None,
            declined=draft.declined,
        )
        if reason is not None:
            # After stream_end: the visitor may close the tab meanwhile, which
            # cancels the turn; the question is recorded all the same.
            await asyncio.shield(
                self.records.record_unanswered(
                    _asked(grounds), locale=self.locale, reason=reason, session_id=self.session_id
                )
            )


def rate_limit_keys(session_id: str, visitor: Visitor) -> list[str]:
    """Per user; for anonymous visitors per IP (per session when the IP is unknown).

    The IP key means a new anonymous session does not reset the count. A
    session key beside it would add nothing: every message of the session is
    also counted against its IP, with the same rate, so the IP's count always
    refuses first (and a second key costs the limiter a second trip a message).
    """
    if visitor.user_id is not None:
        return [f"user:{visitor.user_id}"]
    if visitor.ip:
        return [f"ip:{visitor.ip}"]
    return [f"session:{session_id}"]


async def limit_session_start(visitor: Visitor) -> None:
    """Count a ``session_init`` against ``SESSION_START_RATE``; raise :class:`RateLimited`.

    A conversation costs rows (the session, its analytics); one visitor may
    not start them without end. Per user, else per IP, like messages. Allowed
    when the limiter cannot be reached.
    """
    limiter = backends.session_start_limiter()
    if limiter is None:
        return
    key = f"user:{visitor.user_id}" if visitor.user_id is not None else f"ip:{visitor.ip}"
    try:
        decision = await limiter.hit(f"session_start:{key}")
    except RateLimiterUnavailable:
        # Open whatever RATE_LIMIT_FAIL_OPEN says: a conversation costs no
        # model call, and its messages are still refused while the limiter is down.
        logger.warning("Rate limiter unavailable; session start allowed", exc_info=True)
        return
    if not decision.allowed:
        logger.info("Session start rate limited", extra={"retry_after": decision.retry_after})
        raise RateLimited(retry_after=decision.retry_after)


async def search_knowledge(question: str, locale: str) -> list[KnowledgeHit]:
    """The ``KNOWLEDGE_RESULTS`` best entries; none when the source fails (logged)."""
    limit = conf.get("KNOWLEDGE_RESULTS")
    if not limit:
        return []
    try:
        return list(await backends.knowledge().search(question, locale=locale, limit=limit))
    except Exception:
        logger.exception("Knowledge search failed; answering without it")
        return []


def turn_search_query(question: StoredQuestion) -> SearchQuery:
    """The knowledge search query of a turn: the question, and the earlier one a follow-up
    leans on (:func:`~sophie_chat.knowledge.query.search_query`)."""
    earlier = [item.content for item in question.history if item.role == "user"]
    return search_query(question.message.content, earlier)


def _asked(grounds: Grounds) -> str:
    """The question as recorded unanswered: a follow-up after what it leans on."""
    context = getattr(grounds.query, "context", ())
    return " … ".join([*context, grounds.question.content])


def answer_sources(hits: list[KnowledgeHit]) -> list[dict[str, str]]:
    """``metadata.sources``: the entries used, best first, one per link."""
    sources: list[dict[str, str]] = []
    seen: set[str] = set()
    for hit in hits:
        source = hit.as_source()
        identity = source.get("url") or source["title"]
        if identity not in seen:
            seen.add(identity)
            sources.append(source)
    return sources


def fallback_text(
    hits: list[KnowledgeHit], locale: str, offered: Sequence[offers.Offer] = ()
) -> str:
    """What to say when the model failed: the entry that answers the question, if one
    does (:func:`best_answer`), else the fallback message and the ``offered`` alternatives."""
    best = best_answer(hits)
    with translation.override(locale or None):
        if best is not None:
            return _("I can't reach my full assistant right now, but this may help:") + (
                "\n\n" + best.answer
            )
        text = conf.get("FALLBACK_MESSAGE") or _(
            "Sorry, I can't answer right now. Please try again in a few minutes."
        )
        if offered:
            text = f"{text}\n\n{offers.as_text(offered)}"
        return text


def _log_model_failure(session_id: str, error: LLMError) -> None:
    # The backend logged the cause; this records what the turn did about it.
    cause = error.cause
    logger.warning(
        "Model failed (%s: %s; cause: %s); %s",
        type(error).__name__,
        error,
        _describe_cause(cause),
        "answering with a fallback" if conf.get("FALLBACK_RESPONSES") else "no answer",
        extra={
            "session_id": session_id,
            "error": type(error).__name__,
            "cause": type(cause).__name__ if cause else None,
        },
    )


def _describe_cause(cause: BaseException | None) -> str:
    """A model failure's cause for a log line, without what may echo the request.

    An HTTP error's text holds the provider's response body, which may repeat
    the key, the system prompt and the visitor's words: only its status then.
    """
    if cause is None:
        return "-"
    status = getattr(cause, "status_code", None)
    if status is not None or hasattr(cause, "body"):
        return f"{type(cause).__name__}: HTTP {status}"
    return f"{type(cause).__name__}: {redact(str(cause))}"


def _max_tokens(left_today: int | None) -> int | None:
    """``MAX_ANSWER_TOKENS``, lowered to what is left of the daily budget."""
    cap = conf.get("MAX_ANSWER_TOKENS")
    if left_today is None:
        return cap
    return max(1, left_today if cap is None else min(cap, left_today))


def _tokens_spent(messages: Sequence[PromptMessage], usage: Usage | None, answer: str) -> int:
    """What an answer cost: the backend's usage report, else the configured count."""
    if usage is not None and (usage.prompt_tokens or usage.completion_tokens):
        return usage.prompt_tokens + usage.completion_tokens
    return prompt_tokens(messages) + (count_tokens(answer) if answer else 0)


#: The most of a tool's result the model is given, in characters.
MAX_TOOL_RESULT_CHARS = 8000


def _result_text(value: Any) -> str:
    """A tool's return value as the model reads it: JSON (dates as ISO text), cut to
    :data:`MAX_TOOL_RESULT_CHARS` so one result cannot fill the prompt."""
    if isinstance(value, str):
        text = value
    else:
        try:
            text = json.dumps(
                pydantic.TypeAdapter(Any).dump_python(value, mode="json"), ensure_ascii=False
            )
        except Exception:
            text = str(value)
    if len(text) > MAX_TOOL_RESULT_CHARS:
        text = text[:MAX_TOOL_RESULT_CHARS] + " [… cut: the result was too long]"
    return text


def _log_text(text: str) -> str:
    return text if conf.get("LOG_ALL_MESSAGES") else f"<{len(text)} characters>"


def _ms_since(start: float) -> int:
    return int((time.monotonic() - start) * 1000)
