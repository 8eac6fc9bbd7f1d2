"""The turn, driven directly: ``run_turn`` with a recording sink and the DummyBackend.

The consumer's tests see the same turns as frames; these see what the engine
reports and stores, in order, without a WebSocket in between.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.contrib.auth.models import AnonymousUser
from django.utils import timezone

from sophie_chat import backends, db, quota, store
from sophie_chat.engine import AnswerDraft, TurnRequest, Visitor, run_turn
from sophie_chat.exceptions import AIUnavailable, QuotaExceeded, RateLimited
from sophie_chat.history import HistoryItem
from sophie_chat.llm.base import LLMUnavailable, Usage
from sophie_chat.models import (
    ChatAnalytics,
    ChatMessage,
    KnowledgeBaseEntry,
    TokenUsage,
    UnansweredQuestion,
)
from sophie_chat.store import AnswerRecord, SessionState, StoredMessage, StoredQuestion
from tests.support.overrides import settings_with

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
async def _database_work_done():
    yield
    # A cancelled turn's last query may still run in a database thread; the
    # test database is flushed once it is done and the threads are let go.
    await database_sync_to_async(lambda: None)()
    await asyncio.to_thread(db.reset_database_threads, wait=True)


class RecordingSink:
    """A TurnSink that keeps every report, in order."""

    def __init__(self) -> None:
        self.reports: list[tuple[Any, ...]] = []

    async def accepted(self, message: StoredMessage, *, new: bool) -> None:
        self.reports.append(("accepted", message, new))

    async def typing(self, is_typing: bool) -> None:
        self.reports.append(("typing", is_typing))

    async def started(self, message_id: str, reply_to: str) -> None:
        self.reports.append(("started", message_id, reply_to))

    async def delta(self, message_id: str, text: str) -> None:
        self.reports.append(("delta", message_id, text))

    async def finished(self, message: StoredMessage) -> None:
        self.reports.append(("finished", message))

    def kinds(self) -> list[str]:
        """Report names, with a run of deltas as one ``delta``."""
        kinds: list[str] = []
        for report in self.reports:
            if not (report[0] == "delta" and kinds and kinds[-1] == "delta"):
                kinds.append(report[0])
        return kinds

    def text(self) -> str:
        return "".join(report[2] for report in self.reports if report[0] == "delta")

    def last(self, kind: str) -> tuple[Any, ...]:
        return [report for report in self.reports if report[0] == kind][-1]


async def new_session(locale: str = "en") -> SessionState:
    return await store.create_session(
        user_id=None, user_type="anonymous", locale=locale, context={}, client_ip=None
    )


def request(
    session: SessionState, content: str, client_message_id: str | None = None, **fields: Any
) -> TurnRequest:
    # An IP of the session's own: rate and budget counters are per IP.
    digits = session.id.replace("-", "")
    ip = f"2001:db8::{digits[:4]}:{digits[4:8]}:{digits[8:12]}"
    return TurnRequest(
        session=session,
        visitor=Visitor(user=AnonymousUser(), user_id=None, user_type="anonymous", ip=ip),
        content=content,
        client_message_id=client_message_id,
        locale=session.locale,
        **fields,
    )


async def turn(session: SessionState, content: str, client_message_id: str | None = None):
    sink = RecordingSink()
    await run_turn(request(session, content, client_message_id), sink)
    return sink


async def stored(session: SessionState) -> list[tuple[str, str, str]]:
    return [
        row
        async for row in ChatMessage.objects.filter(session_id=session.id)
        .order_by("created_at")
        .values_list("role", "content", "status")
    ]


# -- the order of reports -------------------------------------------------------------


async def test_a_turn_reports_accepted_typing_started_deltas_finished_in_order(dummy_llm):
    dummy_llm.enqueue("Cleaning takes about three hours.")
    session = await new_session()

    sink = await turn(session, "How long does cleaning take?", "c-1")

    assert sink.kinds() == ["accepted", "typing", "started", "delta", "finished"]
    _, question, new = sink.reports[0]
    assert new is True
    assert (question.role, question.content) == ("user", "How long does cleaning take?")
    assert sink.reports[1] == ("typing", True)
    _, answer_id, reply_to = sink.last("started")
    assert reply_to == question.id
    (_, answer) = sink.last("finished")
    assert answer.id == answer_id
    assert answer.content == sink.text() == "Cleaning takes about three hours."
    assert answer.metadata["cached"] is False
    assert answer.metadata["fallback"] is False
    assert answer.metadata["model"] == "dummy"
    assert await stored(session) == [
        ("user", "How long does cleaning take?", "complete"),
        ("assistant", "Cleaning takes about three hours.", "complete"),
    ]


async def test_without_the_typing_indicator_no_typing_is_reported(dummy_llm):
    session = await new_session()
    with settings_with(ENABLE_TYPING_INDICATOR=False):
        sink = await turn(session, "Hello")

    assert sink.kinds() == ["accepted", "started", "delta", "finished"]


async def test_the_answer_records_the_models_usage_and_timings(dummy_llm):
    dummy_llm.enqueue("Three words here.")
    session = await new_session()

    sink = await turn(session, "Count them")

    (_, answer) = sink.last("finished")
    row = await ChatMessage.objects.aget(pk=answer.id)
    assert row.completion_tokens == 3
    assert row.prompt_tokens > 0
    assert 0 <= row.first_token_ms <= row.total_ms


async def test_the_model_is_asked_with_the_history_and_the_question_last(dummy_llm):
    dummy_llm.enqueue("First answer.", "Second answer.")
    session = await new_session()
    await turn(session, "First question")

    await turn(session, "Second question")

    prompt = [(m.role, m.content) for m in dummy_llm.requests[-1].messages]
    assert prompt[0][0] == "system"
    assert prompt[1:] == [
        ("user", "First question"),
        ("assistant", "First answer."),
        ("user", "Second question"),
    ]


# -- the response cache ----------------------------------------------------------------


async def test_a_first_question_asked_again_elsewhere_is_answered_from_the_cache(dummy_llm):
    dummy_llm.enqueue("Book from the Services page.")
    await turn(await new_session(), "How do I book?")
    other = await new_session()

    sink = await turn(other, "how do I book")

    assert len(dummy_llm.requests) == 1
    assert sink.kinds() == ["accepted", "typing", "started", "delta", "finished"]
    (_, answer) = sink.last("finished")
    assert answer.content == "Book from the Services page."
    assert answer.metadata["cached"] is True
    row = await ChatMessage.objects.aget(pk=answer.id)
    assert (row.prompt_tokens, row.completion_tokens, row.cache_key) == (0, 0, "")


# -- fallback --------------------------------------------------------------------------


async def test_a_failed_model_is_answered_from_the_knowledge_base(dummy_llm):
    await KnowledgeBaseEntry.objects.acreate(
        question="How do I cancel a booking?",
        answer="Cancel up to 24 hours before, from My bookings.",
        locale="en",
    )
    dummy_llm.enqueue_error(LLMUnavailable("down"))
    session = await new_session()

    sink = await turn(session, "How do I cancel a booking?")

    assert sink.kinds() == ["accepted", "typing", "started", "delta", "finished"]
    (_, answer) = sink.last("finished")
    assert answer.metadata["fallback"] is True
    assert answer.metadata["error"] == "LLMUnavailable"
    assert "Cancel up to 24 hours before" in answer.content
    analytics = await ChatAnalytics.objects.aget(session_id=session.id)
    assert (analytics.errors, analytics.fallbacks) == (1, 1)


async def test_a_model_past_the_timeout_is_answered_with_a_fallback():
    session = await new_session()
    with settings_with(RESPONSE_TIMEOUT_SECONDS=0.2):
        backends.llm().first_token_delay = 5
        sink = await turn(session, "Are you there?")

    (_, answer) = sink.last("finished")
    assert answer.metadata["fallback"] is True
    assert answer.metadata["error"] == "LLMTimeout"


async def test_a_model_failing_midway_keeps_its_words_before_the_fallback(dummy_llm):
    dummy_llm.enqueue_error(LLMUnavailable("broken"), text="The first part then", after=2)
    session = await new_session()

    sink = await turn(session, "Tell me everything")

    (_, answer) = sink.last("finished")
    assert answer.content.startswith("The first\n\n")
    assert answer.metadata["fallback"] is True
    assert sink.kinds() == ["accepted", "typing", "started", "delta", "finished"]


async def test_without_fallbacks_a_failed_model_raises_ai_unavailable():
    session = await new_session()
    sink = RecordingSink()

    with settings_with(FALLBACK_RESPONSES=False):
        backends.llm().enqueue_error(LLMUnavailable("down"))
        with pytest.raises(AIUnavailable) as raised:
            await run_turn(request(session, "Hello?", "f-1"), sink)

    assert raised.value.reply_to == "f-1"
    assert isinstance(raised.value.__cause__, LLMUnavailable)
    assert sink.kinds() == ["accepted", "typing", "typing"]
    assert sink.reports[-1] == ("typing", False)
    assert await stored(session) == [("user", "Hello?", "complete")]


async def test_without_fallbacks_a_broken_stream_is_stored_as_failed():
    session = await new_session()
    sink = RecordingSink()

    with settings_with(FALLBACK_RESPONSES=False):
        backends.llm().enqueue_error(LLMUnavailable("broken"), text="Half an answer", after=1)
        with pytest.raises(AIUnavailable):
            await run_turn(request(session, "Hello?"), sink)

    assert sink.kinds() == ["accepted", "typing", "started", "delta", "finished", "typing"]
    assert await stored(session) == [
        ("user", "Hello?", "complete"),
        ("assistant", "Half", "failed"),
    ]


# -- interruption ----------------------------------------------------------------------


async def test_a_cancelled_turn_stores_what_was_said_as_interrupted(dummy_llm):
    dummy_llm.delay = 0.05
    dummy_llm.enqueue("one two three four five six seven eight nine ten")
    session = await new_session()
    sink = RecordingSink()
    task = asyncio.ensure_future(run_turn(request(session, "Count slowly"), sink))
    while sum(1 for report in sink.reports if report[0] == "delta") < 2:
        await asyncio.sleep(0.01)

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert sink.reports[-1] == ("typing", False)
    assert "finished" not in sink.kinds()
    question, answer = await stored(session)
    assert question == ("user", "Count slowly", "complete")
    assert answer == ("assistant", sink.text(), "interrupted")
    row = await ChatMessage.objects.aget(session_id=session.id, role="assistant")
    assert row.metadata["interrupted"] is True
    assert dummy_llm.closed_early == 1


async def test_a_turn_cancelled_before_any_word_stores_no_answer(dummy_llm):
    dummy_llm.first_token_delay = 5
    session = await new_session()
    sink = RecordingSink()
    task = asyncio.ensure_future(run_turn(request(session, "Anyone?"), sink))
    while not dummy_llm.requests:
        await asyncio.sleep(0.01)

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert sink.kinds() == ["accepted", "typing", "typing"]
    assert await stored(session) == [("user", "Anyone?", "complete")]


# -- re-sends --------------------------------------------------------------------------


async def test_a_resend_replays_the_stored_answer_without_asking_the_model(dummy_llm):
    dummy_llm.enqueue("The answer.")
    session = await new_session()
    first = await turn(session, "Question", "same")

    again = await turn(session, "Question", "same")

    assert len(dummy_llm.requests) == 1
    assert again.kinds() == ["accepted", "started", "delta", "finished"]
    _, message, new = again.reports[0]
    assert new is False
    assert message.id == first.reports[0][1].id
    assert again.last("finished")[1].id == first.last("finished")[1].id
    assert again.text() == "The answer."
    assert len(await stored(session)) == 2


async def test_a_resend_is_neither_rate_limited_nor_counted(dummy_llm):
    session = await new_session()
    limited = {
        "BACKEND": "sophie_chat.ratelimit.cache.CacheRateLimiter",
        "OPTIONS": {"rate": "1/m", "burst": None},
    }
    with settings_with(RATE_LIMIT=limited):
        await run_turn(request(session, "Once", "r-1"), RecordingSink())
        again = RecordingSink()
        await run_turn(request(session, "Once", "r-1"), again)

    assert again.kinds() == ["accepted", "started", "delta", "finished"]


async def test_a_resent_question_never_answered_is_answered_now_with_its_history(dummy_llm):
    dummy_llm.enqueue("Earlier answer.", "Now answered.")
    session = await new_session()
    await turn(session, "Earlier question")
    # Stored before a crash, never answered.
    await store.store_user_message(session.id, "Lost question", "lost-1")

    sink = await turn(session, "Lost question", "lost-1")

    assert sink.kinds() == ["accepted", "typing", "started", "delta", "finished"]
    assert sink.reports[0][2] is False
    assert sink.last("finished")[1].content == "Now answered."
    prompt = [(m.role, m.content) for m in dummy_llm.requests[-1].messages[1:]]
    assert prompt == [
        ("user", "Earlier question"),
        ("assistant", "Earlier answer."),
        ("user", "Lost question"),
    ]
    assert [row[1] for row in await stored(session)] == [
        "Earlier question",
        "Earlier answer.",
        "Lost question",
        "Now answered.",
    ]


async def test_a_message_stored_meanwhile_is_answered_once(dummy_llm):
    # The connection said it could not have been sent before, but it was.
    dummy_llm.enqueue("Only once.")
    session = await new_session()
    await turn(session, "Twice?", "dup-1")

    sink = RecordingSink()
    await run_turn(request(session, "Twice?", "dup-1", may_be_resent=False), sink)

    assert sink.kinds() == ["accepted", "started", "delta", "finished"]
    assert sink.reports[0][2] is False
    assert len(dummy_llm.requests) == 1


# -- refusals --------------------------------------------------------------------------


async def test_a_spent_budget_refuses_the_message_before_anything_is_stored():
    session = await new_session()
    turn_request = request(session, "Anything", "q-1")
    await TokenUsage.objects.acreate(
        subject=f"ip:{turn_request.visitor.ip}", day=timezone.localdate(), tokens=100
    )
    sink = RecordingSink()

    with settings_with(DAILY_TOKEN_BUDGET_IP=50):
        model = backends.llm()
        with pytest.raises(QuotaExceeded) as raised:
            await run_turn(turn_request, sink)

    assert raised.value.reply_to == "q-1"
    assert sink.reports == []
    assert model.requests == []
    assert await stored(session) == []


async def test_an_answer_counts_the_models_usage_against_the_budget():
    session = await new_session()
    turn_request = request(session, "How much?")
    budget = quota.Budget(((f"ip:{turn_request.visitor.ip}", 10_000),))

    with settings_with(DAILY_TOKEN_BUDGET_IP=10_000):
        model = backends.llm()
        model.enqueue("Four words of answer.")
        await run_turn(turn_request, RecordingSink())
        left = await quota.remaining(budget)

    asked = model.requests[0]
    assert asked.max_tokens == 10_000
    # The DummyBackend reports word counts as its usage.
    prompt = sum(len(message.content.split()) for message in asked.messages)
    assert left == 10_000 - (prompt + 4)


async def test_over_the_rate_limit_a_message_is_refused_and_counted(dummy_llm):
    session = await new_session()
    limited = {
        "BACKEND": "sophie_chat.ratelimit.cache.CacheRateLimiter",
        "OPTIONS": {"rate": "1/m", "burst": None},
    }
    with settings_with(RATE_LIMIT=limited):
        await turn(session, "First")
        sink = RecordingSink()
        with pytest.raises(RateLimited) as raised:
            await run_turn(request(session, "Second", "s-2"), sink)

    assert raised.value.reply_to == "s-2"
    assert raised.value.retry_after > 0
    assert sink.reports == []
    assert [row[1] for row in await stored(session)] == ["First", dummy_llm.default_reply]
    analytics = await ChatAnalytics.objects.aget(session_id=session.id)
    assert analytics.rate_limited == 1


# -- unanswered questions --------------------------------------------------------------


async def test_a_question_nothing_was_found_for_is_recorded_as_unanswered(dummy_llm):
    session = await new_session()

    await turn(session, "Do you repair pianos?")

    recorded = await UnansweredQuestion.objects.aget()
    assert recorded.question == "Do you repair pianos?"
    assert recorded.reason == "no_match"
    assert str(recorded.last_session_id) == session.id


async def test_an_answer_found_in_the_knowledge_base_records_nothing(dummy_llm):
    await KnowledgeBaseEntry.objects.acreate(
        question="Do you clean windows?", answer="Yes, inside and out.", locale="en"
    )
    dummy_llm.enqueue("Yes, we clean windows inside and out.")

    await turn(await new_session(), "Do you clean windows?")

    assert await UnansweredQuestion.objects.acount() == 0


# -- the answer draft and the records ----------------------------------------------------


def test_usage_adds_up_over_model_rounds():
    draft = AnswerDraft(session_id="s", reply_to="q", model="m")
    draft.add_usage(Usage(prompt_tokens=100, completion_tokens=10))
    draft.add_usage(Usage(prompt_tokens=130, completion_tokens=5))

    record = draft.record("complete")

    assert (record.prompt_tokens, record.completion_tokens) == (230, 15)


class MemoryRecords:
    """TurnRecords that keep everything in this object and nothing in the database."""

    def __init__(self) -> None:
        self.questions: list[StoredMessage] = []
        self.answers: list[AnswerRecord] = []
        self.events: list[str] = []

    async def find_resend(self, session_id: str, client_message_id: str) -> None:
        return None

    async def store_question(
        self, session_id: str, content: str, client_message_id: str | None
    ) -> StoredQuestion:
        message = StoredMessage(
            id=str(uuid.uuid4()), role="user", content=content, created_at=_now()
        )
        history = [HistoryItem("user", q.content) for q in self.questions]
        self.questions.append(message)
        return StoredQuestion(message, history, True)

    async def store_answer(self, record: AnswerRecord) -> StoredMessage:
        self.answers.append(record)
        return StoredMessage(
            id=record.id,
            role="assistant",
            content=record.content,
            created_at=_now(),
            status=record.status,
            reply_to=record.reply_to,
            metadata=record.metadata,
        )

    async def count_event(self, session_id: str, counter: str) -> None:
        self.events.append(counter)

    async def tokens_left(self, budget: quota.Budget) -> int | None:
        return None

    async def spend_tokens(self, budget: quota.Budget, tokens: int) -> None:
        self.events.append("spent")

    async def record_unanswered(
        self, question: str, *, locale: str, reason: str, session_id: str
    ) -> None:
        self.events.append(f"unanswered:{reason}")


def _now() -> datetime:
    return timezone.now()


async def test_a_turn_keeps_its_records_where_it_is_told(dummy_llm):
    dummy_llm.enqueue("Kept in memory.")
    session = await new_session()
    records = MemoryRecords()
    sink = RecordingSink()

    await run_turn(request(session, "Do you repair pianos?"), sink, records)

    assert sink.kinds() == ["accepted", "typing", "started", "delta", "finished"]
    assert [answer.content for answer in records.answers] == ["Kept in memory."]
    assert records.events == ["unanswered:no_match"]
    assert await stored(session) == []


async def test_a_resent_question_never_answered_is_rate_limited_like_a_new_one(dummy_llm):
    # Issue 16: send, drop before the first token, resume, re-send... was a
    # model call each time with no limit hit.
    session = await new_session()
    await store.store_user_message(session.id, "Lost question", "lost-1")
    limited = {
        "BACKEND": "sophie_chat.ratelimit.cache.CacheRateLimiter",
        "OPTIONS": {"rate": "1/m", "burst": None},
    }
    with settings_with(RATE_LIMIT=limited):
        await turn(session, "First question")
        with pytest.raises(RateLimited):
            await run_turn(request(session, "Lost question", "lost-1"), RecordingSink())
        assert len(backends.llm().requests) == 1


def test_an_anonymous_visitor_is_counted_once_a_message_by_ip_else_by_session():
    # The IP's count always refuses first (same rate, every message counted): a
    # session key beside it would be a second limiter trip for nothing.
    from sophie_chat.engine import Visitor, rate_limit_keys

    anonymous = Visitor(user=None, user_id=None, user_type="anonymous", ip="203.0.113.7")
    assert rate_limit_keys("s-1", anonymous) == ["ip:203.0.113.7"]
    no_ip = Visitor(user=None, user_id=None, user_type="anonymous", ip=None)
    assert rate_limit_keys("s-1", no_ip) == ["session:s-1"]
    user = Visitor(user=None, user_id=7, user_type="client", ip="203.0.113.7")
    assert rate_limit_keys("s-1", user) == ["user:7"]
