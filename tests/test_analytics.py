"""Analytics: figures per day and over a period, counted from stored conversations."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from channels.db import database_sync_to_async
from django.test import override_settings
from django.utils import timezone

from sophie_chat import analytics
from sophie_chat.models import (
    ChatAnalytics,
    ChatErrorEvent,
    ChatSession,
    DailyAnalytics,
    UnansweredQuestion,
)
from tests.support.records import conversation

pytestmark = pytest.mark.django_db

TODAY = datetime(2026, 3, 10, 15, 0, tzinfo=ZoneInfo("UTC"))


def day(offset: int = 0):
    return (TODAY + timedelta(days=offset)).date()


def summarize(start_offset: int = 0, end_offset: int = 0) -> analytics.Summary:
    return analytics.summarize(day(start_offset), day(end_offset))


def test_counts_conversations_messages_and_answers_by_source():
    conversation(at=TODAY, turns=[{}, {"cached": True}])
    conversation(at=TODAY, turns=[{"fallback": True, "error": "LLMTimeout"}])
    conversation(at=TODAY)

    totals = summarize().totals

    assert (totals.conversations, totals.user_messages, totals.answers) == (3, 3, 3)
    assert (totals.cache_hits, totals.fallbacks) == (1, 1)
    assert totals.model_failures == {"LLMTimeout": 1}


def test_latency_percentiles_are_exact_over_the_period():
    conversation(
        at=TODAY,
        turns=[{"first_token_ms": ms // 10, "total_ms": ms} for ms in range(100, 1001, 100)],
    )

    totals = summarize().totals

    assert (totals.total.p50, totals.total.p95) == (500, 1000)
    assert (totals.first_token.p50, totals.first_token.p95) == (50, 100)
    assert not totals.total.estimated


def test_cache_hits_stay_out_of_latency():
    conversation(at=TODAY, turns=[{"total_ms": 2000}, {"total_ms": 3, "cached": True}])

    assert summarize().totals.total.p50 == 2000


def test_interrupted_answers_count_for_first_token_but_not_total_time():
    conversation(
        at=TODAY,
        turns=[
            {"first_token_ms": 300, "total_ms": 900},
            {"first_token_ms": 100, "total_ms": 60000, "status": "interrupted"},
        ],
    )

    totals = summarize().totals

    assert totals.interrupted == 1
    assert totals.first_token.p50 == 100
    assert totals.total.p95 == 900


@override_settings(
    SOPHIE_CHAT={
        "LLM": {"BACKEND": "sophie_chat.llm.dummy.DummyBackend"},
        "MODEL_PRICES": {
            "gpt-4o": {"input": 2.5, "output": 10},
            "gpt-4o-mini": {"input": 0.15, "output": 0.6},
        },
    }
)
def test_tokens_and_cost_per_model_at_configured_prices():
    conversation(
        at=TODAY,
        turns=[
            {
                "model": "gpt-4o-mini-2024-07-18",
                "prompt_tokens": 1_000_000,
                "completion_tokens": 500_000,
            },
            {"model": "gpt-4o", "prompt_tokens": 100_000, "completion_tokens": 10_000},
        ],
    )

    summary = summarize()

    usage = {u.model: u for u in summary.usage}
    assert usage["gpt-4o-mini-2024-07-18"].cost == Decimal("0.45")
    assert usage["gpt-4o"].cost == Decimal("0.35")
    assert summary.cost == Decimal("0.80")
    assert (summary.totals.prompt_tokens, summary.totals.completion_tokens) == (1_100_000, 510_000)


def test_model_without_a_price_has_no_cost():
    conversation(at=TODAY, turns=[{"model": "llama3", "prompt_tokens": 10, "completion_tokens": 5}])

    summary = summarize()

    assert summary.usage[0].cost is None
    assert summary.cost is None


def test_ratings_and_satisfaction():
    conversation(
        at=TODAY,
        turns=[{"rating": "up"}, {"rating": "up"}, {"rating": "down"}],
        satisfaction_score=4,
    )
    conversation(at=TODAY, satisfaction_score=2)
    conversation(at=TODAY)

    totals = summarize().totals

    assert (totals.thumbs_up, totals.thumbs_down) == (2, 1)
    assert totals.satisfaction == 3
    assert totals.rated_conversations == 2


def test_errors_are_counted_by_code():
    session = conversation(at=TODAY)
    for code in ("rate_limited", "rate_limited", "invalid_json"):
        ChatErrorEvent.objects.create(session=session, code=code, created_at=TODAY)
    ChatErrorEvent.objects.create(code="invalid_json", created_at=TODAY)

    totals = summarize().totals

    assert totals.errors_by_code == {"rate_limited": 2, "invalid_json": 2}
    assert (totals.errors, totals.rate_limited) == (4, 2)


def test_open_unanswered_questions_last_asked_in_the_period_are_counted():
    for key, asked, resolved in (
        ("a", TODAY, False),
        ("b", TODAY, True),
        ("c", TODAY - timedelta(days=9), False),
    ):
        UnansweredQuestion.objects.create(
            key=key, question=key, reason="no_match", last_asked_at=asked, resolved=resolved
        )

    assert summarize().unanswered == 1


def test_every_day_of_the_period_is_listed_including_empty_ones():
    conversation(at=TODAY - timedelta(days=2), turns=[{}])
    conversation(at=TODAY, turns=[{}, {}])

    summary = summarize(-3, 0)

    assert [d.day for d in summary.days] == [day(-3), day(-2), day(-1), day(0)]
    assert [d.answers for d in summary.days] == [0, 1, 0, 2]


def test_days_are_calendar_days_in_the_current_time_zone():
    # 01:30 UTC on the 10th is still the 9th in São Paulo (UTC-3).
    conversation(at=datetime(2026, 3, 10, 1, 30, tzinfo=ZoneInfo("UTC")))

    with timezone.override(ZoneInfo("America/Sao_Paulo")):
        summary = summarize(-1, 0)

    assert [d.conversations for d in summary.days] == [1, 0]


def test_top_questions_group_the_same_question_however_it_is_typed():
    conversation(at=TODAY, turns=[{"question": "Quanto custa uma faxina?"}])
    conversation(at=TODAY, turns=[{"question": "quanto custa uma FAXINA"}])
    conversation(at=TODAY, turns=[{"question": "Vocês atendem em Campinas?"}])

    top = analytics.top_questions(day(), day())

    assert top[0].count == 2
    assert top[0].text.lower().startswith("quanto custa uma faxina")
    assert [q.count for q in top] == [2, 1]


def test_worst_rated_answers_come_with_their_question_and_conversation():
    session = conversation(
        at=TODAY,
        turns=[
            {
                "question": "Can I pay by pix?",
                "answer": "No idea.",
                "rating": "down",
                "comment": "Useless",
            },
            {"question": "Thanks", "rating": "up"},
        ],
    )

    (worst,) = analytics.worst_rated_answers(day(), day())

    assert (worst.question, worst.answer, worst.comment) == (
        "Can I pay by pix?",
        "No idea.",
        "Useless",
    )
    assert worst.session_id == str(session.pk)


def test_frozen_day_keeps_its_figures_after_its_conversations_are_deleted():
    conversation(at=TODAY - timedelta(days=5), turns=[{"total_ms": 800, "rating": "up"}])

    assert analytics.freeze_days_through(day(-5)) == 1
    ChatSession.objects.all().delete()
    summary = summarize(-5, -5)

    assert (summary.totals.conversations, summary.totals.answers, summary.totals.thumbs_up) == (
        1,
        1,
        1,
    )
    assert summary.days[0].frozen
    assert summary.frozen_days == 1


def test_freezing_twice_keeps_one_row_per_day():
    conversation(at=TODAY - timedelta(days=5), turns=[{}])

    analytics.freeze_days_through(day(-5))
    analytics.freeze_days_through(day(-1))

    assert DailyAnalytics.objects.count() == 1


def test_period_reaching_frozen_days_estimates_percentiles_from_histograms():
    conversation(at=TODAY - timedelta(days=5), turns=[{"total_ms": 900}] * 3)
    conversation(at=TODAY, turns=[{"total_ms": 1800}])
    analytics.freeze_days_through(day(-5))

    total = summarize(-5, 0).totals.total

    assert total.estimated
    assert 750 < total.p50 <= 1000
    assert 1500 < total.p95 <= 2000


def test_histogram_percentile_interpolates_within_a_bucket():
    counts = analytics.histogram([120, 150, 180, 190])

    assert 100 < analytics.histogram_percentile(counts, 50) <= 200


@pytest.mark.django_db(transaction=True)
async def test_a_real_conversation_is_counted_per_session_and_per_day(connect, dummy_llm):
    dummy_llm.enqueue("Our opening hours are 8 to 18.")
    client, _ = await connect()
    session = await client.start()
    await client.ask("When are you open?")
    await client.send({"type": "message", "content": ""})
    await client.receive()

    @database_sync_to_async
    def figures():
        counters = ChatAnalytics.objects.get(session_id=session["session_id"])
        today = timezone.localdate()
        return counters, analytics.summarize(today, today).totals

    counters, totals = await figures()
    assert (counters.user_messages, counters.answers) == (1, 1)
    assert counters.completion_tokens > 0
    assert (totals.conversations, totals.user_messages, totals.answers) == (1, 1, 1)
    assert totals.errors_by_code == {"empty_message": 1}
    assert totals.usage["dummy"]["completion_tokens"] == counters.completion_tokens


@pytest.mark.django_db(transaction=True)
async def test_an_error_frame_is_recorded_with_its_code_and_conversation(connect):
    client, _ = await connect()
    session = await client.start()
    await client.send("not json")
    assert (await client.receive())["code"] == "invalid_json"

    events = await database_sync_to_async(
        lambda: list(ChatErrorEvent.objects.values_list("session_id", "code"))
    )()
    assert [(str(s), c) for s, c in events] == [(session["session_id"], "invalid_json")]


@pytest.mark.django_db(transaction=True)
async def test_a_flood_of_bad_frames_records_a_bounded_number_of_errors(connect):
    from sophie_chat.consumers import MAX_RECORDED_ERRORS_PER_CONNECTION

    client, _ = await connect()
    for _ in range(MAX_RECORDED_ERRORS_PER_CONNECTION + 10):
        await client.send("not json")
        await client.receive()

    count = await database_sync_to_async(ChatErrorEvent.objects.count)()
    assert count == MAX_RECORDED_ERRORS_PER_CONNECTION


@pytest.mark.django_db(transaction=True)
async def test_no_error_is_recorded_when_analytics_are_off(connect, settings):
    settings.SOPHIE_CHAT = {**settings.SOPHIE_CHAT, "ENABLE_ANALYTICS": False}
    client, _ = await connect()
    await client.send("not json")
    await client.receive()

    assert await database_sync_to_async(ChatErrorEvent.objects.count)() == 0
