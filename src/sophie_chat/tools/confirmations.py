"""Waiting for a visitor's confirmation, woken at once when this process hears of it.

The decision itself is in the database (:mod:`sophie_chat.tools.records`);
here a turn waits for it. A connection that decides a confirmation, or
receives another tab's ``confirm_closed`` over the conversation's group,
calls :func:`notify`; a turn also reads the decision every
:data:`POLL_SECONDS`, so a decision taken in another process reaches it
even while the channel layer is down.
"""

from __future__ import annotations

import asyncio

from sophie_chat.tools import records

#: How often a waiting turn reads its confirmation from the database.
POLL_SECONDS = 1.0

_waiting: dict[str, asyncio.Event] = {}


def expect(confirmation_id: str) -> None:
    """Be ready to be woken for ``confirmation_id`` (before the visitor is asked)."""
    _waiting.setdefault(confirmation_id, asyncio.Event())


def notify(confirmation_id: str) -> None:
    """A confirmation was decided: wake the turn of this process that waits for it."""
    event = _waiting.get(str(confirmation_id))
    if event is not None:
        event.set()


async def wait(confirmation_id: str, seconds: float) -> str:
    """The confirmation's outcome: ``accepted``, ``declined``, or ``expired`` after ``seconds``.

    Exactly one outcome wins in the database; this returns the one that did.
    """
    event = _waiting.setdefault(confirmation_id, asyncio.Event())
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    try:
        while True:
            left = deadline - loop.time()
            if left <= 0:
                return await records.expire(confirmation_id)
            try:
                async with asyncio.timeout(min(POLL_SECONDS, left)):
                    await event.wait()
            except TimeoutError:
                pass
            event.clear()
            outcome = await records.outcome(confirmation_id)
            if outcome != records.PENDING:
                return outcome
    finally:
        _waiting.pop(confirmation_id, None)


async def cancel(confirmation_id: str) -> str:
    """The turn is going away (the visitor left): nobody may confirm any more."""
    return await records.expire(confirmation_id)
