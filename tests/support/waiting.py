"""Waiting for what happens after the caller's step, without sleeping a fixed time."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from typing import Any


async def eventually(check: Callable[[], Any], timeout: float = 5.0) -> Any:
    """``check()``'s first truthy result (awaited if it is awaitable), polled until ``timeout``.

    What a turn records after its answer ended (unanswered questions) is
    written while the visitor reads the answer, in another database thread
    than the test's.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result or time.monotonic() > deadline:
            return result
        await asyncio.sleep(0.02)
