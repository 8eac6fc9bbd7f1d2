"""The statements every turn runs, as SQL written once per database.

The ORM builds each query anew, and for the handful of statements every
message runs that was most of a turn's CPU time (docs/performance.md). The
SQL here is made from the models' metadata with the backend's own quoting,
and every value goes through its model field's ``get_db_prep_*``, as the
ORM's compilers do: table and column names, UUIDs, JSON and datetimes come
out the same on every database Django supports. Everything else in
:mod:`sophie_chat.store` uses the ORM.

Each method takes a cursor (``connection.cursor()``) of the alias the
statements were made for; values are adapted for the cursor's connection.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from django.core.signals import setting_changed
from django.db import connections, router, transaction
from django.db.models import Model
from django.dispatch import receiver

from sophie_chat.models import ChatAnalytics, ChatMessage, ChatSession

#: The counters :meth:`TurnStatements.count_answer` adds to, by the answer's
#: properties; the same names as ChatAnalytics' fields.
ANSWER_COUNTERS = (
    "answers",
    "cache_hits",
    "fallbacks",
    "interrupted",
    "prompt_tokens",
    "completion_tokens",
    "total_first_token_ms",
    "total_response_ms",
)


class TurnStatements:
    """SQL of a turn's statements for one database alias."""

    def __init__(self, alias: str) -> None:
        connection = connections[alias]
        quote = connection.ops.quote_name
        session, message, analytics = ChatSession._meta, ChatMessage._meta, ChatAnalytics._meta

        def column(meta: Any, name: str) -> str:
            return quote(meta.get_field(name).column)

        self._session_pk = session.pk
        self._expires_at = session.get_field("expires_at")
        self._updated_at = session.get_field("updated_at")
        self._message_session = message.get_field("session")
        self._analytics_session = analytics.get_field("session")
        lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
        expires = column(session, "expires_at")
        self._lock_session = (
            f"SELECT {column(session, 'status')}, {expires} <= %s, {expires} <= %s"  # noqa: S608
            f" FROM {quote(session.db_table)} WHERE {quote(session.pk.column)} = %s{lock}"
        )
        self._touch_session = (
            f"UPDATE {quote(session.db_table)} SET {expires} = %s,"  # noqa: S608
            f" {column(session, 'updated_at')} = %s WHERE {quote(session.pk.column)} = %s"
        )
        self._history = (
            f"SELECT {column(message, 'role')}, {column(message, 'content')}"  # noqa: S608
            f" FROM {quote(message.db_table)}"
            f" WHERE {column(message, 'session')} = %s AND {column(message, 'status')} <> %s"
            f" ORDER BY {column(message, 'created_at')} DESC, {quote(message.pk.column)} DESC "
        )
        counted = column(analytics, "user_messages")
        where = f" WHERE {column(analytics, 'session')} = %s"
        self._count_question = (
            f"UPDATE {quote(analytics.db_table)} SET {counted} = {counted} + 1{where}"  # noqa: S608
        )
        sums = ", ".join(
            f"{column(analytics, name)} = {column(analytics, name)} + %s"
            for name in ANSWER_COUNTERS
        )
        self._count_answer = f"UPDATE {quote(analytics.db_table)} SET {sums}{where}"  # noqa: S608
        self._inserts: dict[type[Model], tuple[str, list[Any]]] = {}
        for model in (ChatSession, ChatMessage, ChatAnalytics):
            # An auto-incremented key is left to the database (and not read back).
            fields = [
                field
                for field in model._meta.local_concrete_fields
                if field is not model._meta.auto_field
            ]
            columns = ", ".join(quote(field.column) for field in fields)
            marks = ", ".join(["%s"] * len(fields))
            self._inserts[model] = (
                f"INSERT INTO {quote(model._meta.db_table)} ({columns}) VALUES ({marks})",  # noqa: S608
                fields,
            )

    def lock_session(
        self, cursor: Any, session_id: str, *, now: datetime, touch_before: datetime
    ) -> tuple[str, bool, bool] | None:
        """Lock a session for a turn: its status, whether it expired, whether to touch it.

        "Touch" is true when its expiry is at or before ``touch_before``.
        None when there is no such session.
        """
        self.send_lock_session(cursor, session_id, now=now, touch_before=touch_before)
        return self.locked_session(cursor)

    @staticmethod
    def locked_session(cursor: Any) -> tuple[str, bool, bool] | None:
        """The result of :meth:`send_lock_session`, read from its cursor."""
        row = cursor.fetchone()
        return None if row is None else (row[0], bool(row[1]), bool(row[2]))

    def send_lock_session(
        self, cursor: Any, session_id: str, *, now: datetime, touch_before: datetime
    ) -> None:
        """:meth:`lock_session`'s statement, its result left on ``cursor``."""
        prep, connection = self._expires_at.get_db_prep_value, cursor.db
        cursor.execute(
            self._lock_session,
            [
                prep(now, connection),
                prep(touch_before, connection),
                self._session_pk.get_db_prep_value(session_id, connection),
            ],
        )

    def touch_session(
        self, cursor: Any, session_id: str, expires_at: datetime, now: datetime
    ) -> None:
        connection = cursor.db
        cursor.execute(
            self._touch_session,
            [
                self._expires_at.get_db_prep_value(expires_at, connection),
                self._updated_at.get_db_prep_value(now, connection),
                self._session_pk.get_db_prep_value(session_id, connection),
            ],
        )

    def history(self, cursor: Any, session_id: str, limit: int) -> list[tuple[str, str]]:
        """``(role, content)`` of the latest ``limit`` messages, newest first (not failed ones)."""
        self.send_history(cursor, session_id, limit)
        return cursor.fetchall()

    def send_history(self, cursor: Any, session_id: str, limit: int) -> None:
        """:meth:`history`'s statement, its rows left on ``cursor``."""
        connection = cursor.db
        cursor.execute(
            self._history + connection.ops.limit_offset_sql(0, limit),
            [
                self._message_session.get_db_prep_value(session_id, connection),
                ChatMessage.Status.FAILED.value,
            ],
        )

    def insert(self, cursor: Any, obj: Model) -> None:
        """INSERT a new instance, as ``save()`` would minus signals.

        A primary key the database numbers (an ``AutoField``) is not read
        back: ``obj.pk`` stays None.
        """
        sql, fields = self._inserts[type(obj)]
        connection = cursor.db
        cursor.execute(
            sql, [field.get_db_prep_save(field.pre_save(obj, True), connection) for field in fields]
        )
        obj._state.adding = False
        obj._state.db = connection.alias

    def count_question(self, cursor: Any, session_id: str) -> None:
        cursor.execute(
            self._count_question,
            [self._analytics_session.get_db_prep_value(session_id, cursor.db)],
        )

    def count_answer(self, cursor: Any, session_id: str, amounts: dict[str, int]) -> None:
        """Add ``amounts`` (by :data:`ANSWER_COUNTERS` name; missing ones are 0)."""
        cursor.execute(
            self._count_answer,
            [
                *(amounts.get(name, 0) for name in ANSWER_COUNTERS),
                self._analytics_session.get_db_prep_value(session_id, cursor.db),
            ],
        )


_made: dict[str, TurnStatements] = {}


def for_alias(alias: str) -> TurnStatements:
    """The statements of database ``alias`` (made on first use)."""
    statements = _made.get(alias)
    if statements is None:
        statements = _made[alias] = TurnStatements(alias)
    return statements


@contextmanager
def pipelined(cursor: Any) -> Iterator[bool]:
    """Statements sent meanwhile go together, their results read at the end; whether so.

    On PostgreSQL with psycopg 3 this is psycopg's pipeline mode: a unit of
    work's statements cost one round trip instead of one each (each a wait
    for the database and for the GIL back, from a database thread). Elsewhere
    nothing changes, and it yields False: callers that would reorder
    statements for it keep their order. Errors come out as Django's.
    """
    connection = cursor.db
    raw = connection.connection
    if connection.vendor != "postgresql" or not hasattr(raw, "pipeline"):
        yield False
        return
    with connection.wrap_database_errors, raw.pipeline():
        yield True


@contextmanager
def atomic(model: type[Model]) -> Iterator[tuple[TurnStatements, Any]]:
    """A transaction on ``model``'s database: its statements and a cursor."""
    alias = router.db_for_write(model)
    with transaction.atomic(using=alias), connections[alias].cursor() as cursor:
        yield for_alias(alias), cursor


@receiver(setting_changed)
def _forget(*, setting: str, **kwargs: Any) -> None:
    # Made with each alias's connection: its quoting and features.
    if setting in {"DATABASES", "DATABASE_ROUTERS"}:
        _made.clear()
