"""One conversation turn, start to end (DESIGN.md, "A turn").

The consumer hands :func:`run_turn` a :class:`TurnRequest` and a
:class:`TurnSink`; the engine rate-limits, stores, builds context, retrieves
knowledge, answers from the response cache or the model (or a fallback),
stores the answer, and tells the sink what happened as it happens. Errors a
client should hear about are raised as :class:`~sophie_chat.exceptions.ChatError`.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any, Protocol

from django.utils import translation
from django.utils.translation import gettext as _

from sophie_chat import backends, conf, locks, metrics, quota, response_cache, store, unanswered
from sophie_chat.context import ContextRequest, ContextSection, build_context
from sophie_chat.exceptions import AIUnavailable, RateLimited, ServiceUnavailable
from sophie_chat.knowledge.base import KnowledgeHit
from sophie_chat.llm.base import LLMError, LLMRequest, LLMTimeout, Usage
from sophie_chat.models import ChatMessage
from sophie_chat.prompts import HistoryItem, build_messages, prompt_tokens
from sophie_chat.ratelimit.base import RateLimiterUnavailable
from sophie_chat.store import AnswerRecord, SessionState, StoredMessage
from sophie_chat.tokens import count_tokens

logger = logging.getLogger(__name__)


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


class TurnSink(Protocol):
    """What the engine reports, in order, while it runs a turn."""

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


def _log_text(text: str) -> str:
    return text if conf.get("LOG_ALL_MESSAGES") else f"<{len(text)} characters>"


def rate_limit_keys(session_id: str, visitor: Visitor) -> list[str]:
    """Per user; for anonymous visitors per session and per IP.

    The IP key means a new anonymous session does not reset the count.
    """
    if visitor.user_id is not None:
        return [f"user:{visitor.user_id}"]
    keys = [f"session:{session_id}"]
    if visitor.ip:
        keys.append(f"ip:{visitor.ip}")
    return keys


async def check_rate_limit(session_id: str, visitor: Visitor, reply_to: str | None) -> None:
    limiter = backends.rate_limiter()
    for key in rate_limit_keys(session_id, visitor):
        try:
            decision = await limiter.hit(key)
        except RateLimiterUnavailable as exc:
            if conf.get("RATE_LIMIT_FAIL_OPEN"):
                logger.warning(
                    "Rate limiter unavailable; message allowed (RATE_LIMIT_FAIL_OPEN)",
                    exc_info=exc,
                    extra={"session_id": session_id},
                )
                return
            logger.error(
                "Rate limiter unavailable; message refused",
                exc_info=exc,
                extra={"session_id": session_id},
            )
            raise ServiceUnavailable(reply_to=reply_to) from exc
        if not decision.allowed:
            logger.info(
                "Rate limited",
                extra={
                    "session_id": session_id,
                    "key_kind": key.split(":", 1)[0],
                    "retry_after": decision.retry_after,
                },
            )
            await store.count_event(session_id, "rate_limited")
            raise RateLimited(retry_after=decision.retry_after, reply_to=reply_to)


async def run_turn(request: TurnRequest, sink: TurnSink) -> None:
    """Run one turn. Turns of one session run one at a time (see :mod:`sophie_chat.locks`)."""
    async with locks.turn_lock(request.session.id):
        await _run_turn(request, sink)


async def _run_turn(request: TurnRequest, sink: TurnSink) -> None:
    session_id = request.session.id
    reply_to = request.client_message_id
    if request.client_message_id and request.may_be_resent:
        found = await store.find_by_client_id(session_id, request.client_message_id)
        if found is not None:
            message, answer = found
            await sink.accepted(message, new=False)
            if answer is not None:
                await _replay(answer, sink)
            else:
                # Stored but never answered (a crash or a refused model): answer it now.
                await quota.check(_budget(request), reply_to=reply_to)
                history = await store.history_before(session_id, message.id)
                await _answer(request, message, history, sink)
            return
    await check_rate_limit(session_id, request.visitor, reply_to)
    # Before anything is stored: a spent budget refuses the message like a rate limit.
    await quota.check(_budget(request), reply_to=reply_to)
    # The knowledge base is searched while the message is stored: the search
    # needs only the text, and the two wait on different connections.
    search = asyncio.ensure_future(_search(request.content, _locale(request)))
    try:
        message, history, new = await store.store_user_message(
            session_id, request.content, request.client_message_id
        )
        logger.info(
            "Message stored",
            extra={
                "session_id": session_id,
                "message_id": message.id,
                "text": _log_text(request.content),
            },
        )
        await sink.accepted(message, new=new)
        if not new:
            # A re-send: the stored text is what is answered (or replayed), and
            # _answer searches for it again.
            search.cancel()
            found = await store.find_by_client_id(session_id, message.client_message_id or "")
            if found is not None and found[1] is not None:
                await _replay(found[1], sink)
                return
    except BaseException:
        search.cancel()
        raise
    await _answer(request, message, history, sink, search if new else None)


async def _replay(answer: StoredMessage, sink: TurnSink) -> None:
    """Send a stored answer again through the one path clients know."""
    await sink.started(answer.id, answer.reply_to or "")
    if answer.content:
        await sink.delta(answer.id, answer.content)
    await sink.finished(answer)


async def _search(question: str, locale: str) -> list[KnowledgeHit]:
    limit = conf.get("KNOWLEDGE_RESULTS")
    if not limit:
        return []
    try:
        return list(await backends.knowledge().search(question, locale=locale, limit=limit))
    except Exception:
        logger.exception("Knowledge search failed; answering without it")
        return []


def _locale(request: TurnRequest) -> str:
    return request.locale or request.session.locale


async def _answer(
    request: TurnRequest,
    question: StoredMessage,
    history: list[HistoryItem],
    sink: TurnSink,
    search: asyncio.Future[list[KnowledgeHit]] | None = None,
) -> None:
    """Answer a stored question; ``search`` is its knowledge search, if started already."""
    started_at = time.monotonic()
    typing = conf.get("ENABLE_TYPING_INDICATOR")
    if search is None:
        search = asyncio.ensure_future(_search(question.content, _locale(request)))
    announced = False
    try:
        if typing:
            await sink.typing(True)
            announced = True
        await _compose(request, question, history, sink, started_at, search)
    except BaseException:
        search.cancel()
        # Answers end the indicator with stream_start; a turn without one must say so.
        if announced:
            await asyncio.shield(sink.typing(False))
        raise


async def _compose(
    request: TurnRequest,
    question: StoredMessage,
    history: list[HistoryItem],
    sink: TurnSink,
    started_at: float,
    search: asyncio.Future[list[KnowledgeHit]],
) -> None:
    session = request.session
    locale = _locale(request)
    context = await build_context(
        ContextRequest(
            user=request.visitor.user,
            user_id=request.visitor.user_id,
            user_type=request.visitor.user_type,
            session_id=session.id,
            locale=locale,
            page=session.context.get("page") or {},
            session_context=session.context,
            question=question.content,
        )
    )
    hits = await search
    sources = answer_sources(hits)
    answer_id = str(uuid.uuid4())
    llm = backends.llm()

    key = await _cache_key(request, question, history, context, llm.model_name, locale)
    if key is not None:
        cached = await response_cache.get(key)
        if cached is not None:
            await sink.started(answer_id, question.id)
            await sink.delta(answer_id, cached.content)
            stored = await store.store_answer(
                AnswerRecord(
                    id=answer_id,
                    session_id=session.id,
                    reply_to=question.id,
                    content=cached.content,
                    status=ChatMessage.Status.COMPLETE,
                    metadata={
                        "sources": cached.sources,
                        "cached": True,
                        "fallback": False,
                        "model": cached.model,
                    },
                    first_token_ms=_ms_since(started_at),
                    total_ms=_ms_since(started_at),
                    prompt_tokens=0,
                    completion_tokens=0,
                )
            )
            await sink.finished(stored)
            await _note_unanswered(request, question, locale, hits, cached.content)
            return

    messages = build_messages(
        locale=locale, question=question.content, history=history, knowledge=hits, context=context
    )
    budget = _budget(request)
    llm_request = LLMRequest(
        messages=messages,
        locale=locale,
        knowledge=tuple(hits),
        max_tokens=_max_tokens(await quota.remaining(budget)),
    )
    parts: list[str] = []
    first_token_ms: int | None = None
    usage: Usage | None = None
    model = llm.model_name
    error: LLMError | None = None

    async def relay() -> None:
        nonlocal first_token_ms, usage, model
        stream = llm.stream(llm_request)
        try:
            async for chunk in stream:
                if chunk.delta:
                    if first_token_ms is None:
                        first_token_ms = _ms_since(started_at)
                        await sink.started(answer_id, question.id)
                    parts.append(chunk.delta)
                    await sink.delta(answer_id, chunk.delta)
                if chunk.usage is not None:
                    usage = chunk.usage
                if chunk.model:
                    model = chunk.model
        finally:
            await stream.aclose()

    def record(status: str, extra: dict[str, Any], cache_key: str = "") -> AnswerRecord:
        return AnswerRecord(
            id=answer_id,
            session_id=session.id,
            reply_to=question.id,
            content="".join(parts),
            status=status,
            metadata={
                "sources": sources,
                "cached": False,
                "fallback": False,
                "model": model,
                **extra,
            },
            first_token_ms=first_token_ms,
            total_ms=_ms_since(started_at),
            prompt_tokens=usage.prompt_tokens if usage else None,
            completion_tokens=usage.completion_tokens if usage else None,
            cache_key=cache_key,
        )

    try:
        async with asyncio.timeout(conf.get("RESPONSE_TIMEOUT_SECONDS")):
            await relay()
    except TimeoutError as exc:
        error = LLMTimeout(f"no complete answer within {conf.get('RESPONSE_TIMEOUT_SECONDS')} s")
        error.__cause__ = exc
    except LLMError as exc:
        error = exc
    except asyncio.CancelledError:
        # The visitor left mid-answer: keep what was said, marked interrupted.
        if parts:
            await asyncio.shield(
                store.store_answer(record(ChatMessage.Status.INTERRUPTED, {"interrupted": True}))
            )
        if budget:
            spent = _tokens_spent(messages, usage, "".join(parts))
            await asyncio.shield(quota.spend(budget, spent))
        logger.info("Answer interrupted", extra={"session_id": session.id, "message_id": answer_id})
        raise

    if error is None:
        stored = await store.store_answer(
            record(ChatMessage.Status.COMPLETE, {}, cache_key=key or "")
        )
        logger.info(
            "Answer stored",
            extra={
                "session_id": session.id,
                "message_id": answer_id,
                "model": model,
                "first_token_ms": first_token_ms,
                "total_ms": _ms_since(started_at),
                "text": _log_text(stored.content),
            },
        )
        if key is not None and stored.content:
            await response_cache.set(
                key,
                response_cache.CachedAnswer(content=stored.content, sources=sources, model=model),
            )
        if budget:
            # Counted before stream_end: the visitor's next message, in any of
            # their conversations, must find the budget spent.
            await quota.spend(budget, _tokens_spent(messages, usage, stored.content))
        await sink.finished(stored)
        await _note_unanswered(request, question, locale, hits, stored.content)
        return

    # The backend logged the cause; this records what the turn did about it.
    logger.warning(
        "Model failed (%s: %s; cause: %s); %s",
        type(error).__name__,
        error,
        f"{type(error.cause).__name__}: {error.cause}" if error.cause else "-",
        "answering with a fallback" if conf.get("FALLBACK_RESPONSES") else "no answer",
        extra={
            "session_id": session.id,
            "error": type(error).__name__,
            "cause": type(error.cause).__name__ if error.cause else None,
        },
    )
    metrics.model_error(type(error).__name__)
    await store.count_event(session.id, "errors")
    error_name = type(error).__name__
    if not conf.get("FALLBACK_RESPONSES"):
        if parts:
            await sink.finished(
                await store.store_answer(record(ChatMessage.Status.FAILED, {"error": error_name}))
            )
        raise AIUnavailable(reply_to=request.client_message_id or question.id)
    text = fallback_text(hits, locale)
    if parts:
        text = "\n\n" + text
    else:
        first_token_ms = _ms_since(started_at)
        await sink.started(answer_id, question.id)
    parts.append(text)
    await sink.delta(answer_id, text)
    await sink.finished(
        await store.store_answer(
            record(ChatMessage.Status.COMPLETE, {"fallback": True, "error": error_name})
        )
    )
    await _note_unanswered(request, question, locale, hits, "")


def _budget(request: TurnRequest) -> quota.Budget:
    return quota.budget_for(request.visitor.user_id, request.visitor.ip)


def _max_tokens(left_today: int | None) -> int | None:
    """``MAX_ANSWER_TOKENS``, lowered to what is left of the daily budget."""
    cap = conf.get("MAX_ANSWER_TOKENS")
    if left_today is None:
        return cap
    return max(1, left_today if cap is None else min(cap, left_today))


def _tokens_spent(messages: Any, usage: Usage | None, answer: str) -> int:
    """What an answer cost: the backend's usage report, else the configured count."""
    if usage is not None and (usage.prompt_tokens or usage.completion_tokens):
        return usage.prompt_tokens + usage.completion_tokens
    return prompt_tokens(messages) + (count_tokens(answer) if answer else 0)


async def _note_unanswered(
    request: TurnRequest,
    question: StoredMessage,
    locale: str,
    hits: list[KnowledgeHit],
    answer: str,
) -> None:
    reason = unanswered.reason_for(
        question.content,
        searched=bool(conf.get("KNOWLEDGE_RESULTS")),
        hits=len(hits),
        answer=answer,
    )
    if reason is not None:
        await unanswered.record(
            question.content, locale=locale, reason=reason, session_id=request.session.id
        )


async def _cache_key(
    request: TurnRequest,
    question: StoredMessage,
    history: list[HistoryItem],
    context: list[ContextSection],
    model: str,
    locale: str,
) -> str | None:
    if not response_cache.enabled():
        return None
    prior_user_messages = sum(1 for item in history if item.role == "user")
    if not response_cache.is_cacheable(prior_user_messages=prior_user_messages, context=context):
        return None
    try:
        version = await backends.knowledge().version()
    except Exception:
        logger.warning("Knowledge version unavailable; answer not cached", exc_info=True)
        return None
    return response_cache.cache_key(
        question=question.content,
        locale=locale,
        knowledge_version=version,
        user_type=request.visitor.user_type,
        context=context,
        model=model,
    )


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


def fallback_text(hits: list[KnowledgeHit], locale: str) -> str:
    """What to say when the model failed: the best knowledge entry, or the fallback message."""
    with translation.override(locale or None):
        if hits:
            return _("I can't reach my full assistant right now, but this may help:") + (
                "\n\n" + hits[0].answer
            )
        configured = conf.get("FALLBACK_MESSAGE")
        if configured:
            return configured
        return _("Sorry, I can't answer right now. Please try again in a few minutes.")


def _ms_since(start: float) -> int:
    return int((time.monotonic() - start) * 1000)
