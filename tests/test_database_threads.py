"""Sophie's units of database work in their own threads (``DATABASE_THREADS``)."""

from __future__ import annotations

import asyncio
import threading

import psycopg
import pytest
from asgiref.sync import async_to_sync
from django.db import connection

from sophie_chat import db, store
from sophie_chat.models import ChatSession
from tests.support.overrides import settings_with

pytestmark = pytest.mark.django_db(transaction=True)


@db.database_call
def thread_name() -> str:
    return threading.current_thread().name


async def new_session() -> str:
    state = await store.create_session(
        user_id=None, user_type="anonymous", locale="en", context={}, client_ip=None
    )
    return state.id


def test_sqlite_keeps_one_thread_and_other_databases_get_four():
    assert db.database_threads() == (1 if connection.vendor == "sqlite" else 4)


def test_the_setting_wins_over_the_default():
    with settings_with(DATABASE_THREADS=2):
        assert db.database_threads() == 2


async def test_work_runs_in_sophies_threads_when_there_are_several():
    with settings_with(DATABASE_THREADS=3):
        names = set(await asyncio.gather(*(thread_name() for _ in range(6))))

    assert names
    assert all(name.startswith("sophie-db") for name in names)


def test_sync_callers_run_the_work_in_their_own_thread():
    with settings_with(DATABASE_THREADS=3):
        assert async_to_sync(thread_name)() == threading.current_thread().name


@pytest.mark.postgres
async def test_a_conversation_waiting_on_a_lock_does_not_hold_up_the_others():
    blocked, free = await new_session(), await new_session()
    settings = connection.settings_dict
    # Another client holds the first conversation's row, as a slow transaction would.
    locker = await psycopg.AsyncConnection.connect(
        host=settings["HOST"],
        port=settings["PORT"] or 5432,
        user=settings["USER"],
        password=settings["PASSWORD"],
        dbname=settings["NAME"],
    )
    try:
        table = ChatSession._meta.db_table
        await locker.execute(f'SELECT 1 FROM "{table}" WHERE id = %s FOR UPDATE', [blocked])
        waiting = asyncio.ensure_future(store.store_user_message(blocked, "Hello?", "b-1"))
        await asyncio.sleep(0.2)

        question = await asyncio.wait_for(
            store.store_user_message(free, "Anyone there?", "f-1"), timeout=5
        )

        assert question.new
        assert question.message.content == "Anyone there?"
        assert not waiting.done()
    finally:
        await locker.rollback()
        await locker.close()
    stored = await asyncio.wait_for(waiting, timeout=5)
    assert stored.new
    assert stored.message.content == "Hello?"


@pytest.mark.postgres
async def test_the_threads_give_their_connections_back_to_the_pool():
    session = await new_session()
    pool = connection.pool
    assert pool is not None, "tests/settings.py gives PostgreSQL Django's connection pool"

    def checked_out() -> int:
        # Other threads (asgiref's, the test's) may hold one of their own throughout.
        stats = pool.get_stats()
        return stats["pool_size"] - stats["pool_available"]

    before = checked_out()
    for _ in range(3):
        await asyncio.gather(*(store.count_event(session, "errors") for _ in range(12)))

    # psycopg's pool may finish taking a connection back in its own worker a moment
    # after the unit of work returned: wait for that, not for ever.
    for _ in range(100):
        if checked_out() == before:
            break
        await asyncio.sleep(0.02)
    assert checked_out() == before
    assert pool.get_stats().get("requests_waiting", 0) == 0


# -- a unit of work's statements in one round trip (PostgreSQL's pipeline mode) -----------


def test_statements_go_together_on_postgresql_only():
    from sophie_chat import statements

    with connection.cursor() as cursor, statements.pipelined(cursor) as batched:
        assert batched is (connection.vendor == "postgresql")


async def test_a_question_is_stored_with_the_history_before_it_and_counted():
    from sophie_chat.models import ChatAnalytics, ChatMessage

    session_id = await new_session()
    first = await store.store_user_message(session_id, "First?", "c-1")
    second = await store.store_user_message(session_id, "Second?", "c-2")

    assert first.new
    assert second.new
    assert [item.content for item in second.history] == ["First?"]
    assert await ChatMessage.objects.filter(session_id=session_id).acount() == 2
    assert (await ChatAnalytics.objects.aget(session_id=session_id)).user_messages == 2


async def test_a_question_to_a_closed_or_missing_conversation_stores_nothing():
    import uuid

    from sophie_chat.exceptions import SessionClosed, SessionNotFound
    from sophie_chat.models import ChatAnalytics, ChatMessage

    session_id = await new_session()
    await ChatSession.objects.filter(pk=session_id).aupdate(status=ChatSession.Status.CLOSED)
    with pytest.raises(SessionClosed):
        await store.store_user_message(session_id, "Anyone?", "c-3")
    with pytest.raises(SessionNotFound):
        await store.store_user_message(str(uuid.uuid4()), "Anyone?", "c-4")

    assert await ChatMessage.objects.acount() == 0
    assert (await ChatAnalytics.objects.aget(session_id=session_id)).user_messages == 0


async def test_a_question_sent_twice_is_stored_once_and_found_again():
    from sophie_chat.models import ChatAnalytics, ChatMessage

    session_id = await new_session()
    stored = await store.store_user_message(session_id, "Once?", "c-5")
    again = await store.store_user_message(session_id, "Once?", "c-5")

    assert again.new is False
    assert again.message.id == stored.message.id
    assert await ChatMessage.objects.filter(session_id=session_id).acount() == 1
    assert (await ChatAnalytics.objects.aget(session_id=session_id)).user_messages == 1
