"""Turns driven directly: ``run_turn`` with a sink that records what the engine reports.

For tests of what a turn answers, cites and records, without a WebSocket in
between. A report the engine adds to :class:`~sophie_chat.engine.TurnSink`
is recorded by name too.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from django.contrib.auth.models import AnonymousUser

from sophie_chat import store
from sophie_chat.engine import TurnRecords, TurnRequest, Visitor, run_turn
from sophie_chat.store import SessionState, StoredMessage


class RecordingSink:
    """A TurnSink that keeps every report, in order, as ``(name, *arguments)``."""

    def __init__(self) -> None:
        self.reports: list[tuple[Any, ...]] = []

    def __getattr__(self, name: str) -> Callable[..., Awaitable[None]]:
        if name.startswith("_"):
            raise AttributeError(name)

        async def report(*args: Any, **kwargs: Any) -> None:
            self.reports.append((name, *args, *kwargs.values()))

        return report

    def text(self) -> str:
        """The answer's text, from its deltas."""
        return "".join(report[2] for report in self.reports if report[0] == "delta")

    def last(self, kind: str) -> tuple[Any, ...]:
        return [report for report in self.reports if report[0] == kind][-1]

    def answer(self) -> StoredMessage:
        """The stored answer the turn finished with."""
        return self.last("finished")[1]


async def new_session(locale: str = "en") -> SessionState:
    return await store.create_session(
        user_id=None, user_type="anonymous", locale=locale, context={}, client_ip=None
    )


def turn_request(session: SessionState, content: str, **fields: Any) -> TurnRequest:
    """An anonymous visitor's message, from an IP of its own (counters are per IP)."""
    ip = f"198.51.100.{uuid.uuid4().int % 250 + 1}"
    return TurnRequest(
        session=session,
        visitor=Visitor(user=AnonymousUser(), user_id=None, user_type="anonymous", ip=ip),
        content=content,
        client_message_id=fields.pop("client_message_id", None),
        locale=session.locale,
        **fields,
    )


async def turn(
    session: SessionState, content: str, records: TurnRecords | None = None
) -> RecordingSink:
    """Run one turn for ``content``; the sink with its reports."""
    sink = RecordingSink()
    await run_turn(turn_request(session, content), sink, records)
    return sink
