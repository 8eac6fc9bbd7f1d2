"""One turn at a time per session, in one server process and across many.

Within a process, an ``asyncio.Lock`` per session queues turns in arrival
order. When several processes serve the chat, a lease in a shared cache
(``TURN_LOCK_CACHE_ALIAS``, e.g. django-redis) also makes a turn that starts
on one process wait for a turn of the same session running on another, so
the second turn's history includes the first one's answer.

The lease is one atomic ``cache.add`` and expires on its own after
``RESPONSE_TIMEOUT_SECONDS`` plus :data:`LEASE_MARGIN_SECONDS`: a process that
dies mid-turn holds the session for at most that long. A turn waiting for
another process polls the lease, so turns of one session on different
processes run one at a time but not necessarily in arrival order. If the
cache cannot be reached, turns go on with the process lock alone (and a
warning in the log): a cache outage never stops the chat.
"""

from __future__ import annotations

import asyncio
import logging
import math
import uuid
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import caches

from sophie_chat import async_cache, conf

logger = logging.getLogger(__name__)

#: Seconds a lease outlives the longest answer (``RESPONSE_TIMEOUT_SECONDS``).
LEASE_MARGIN_SECONDS = 30
KEY_PREFIX = "sophie_chat:turn:"
# A waiting turn polls the lease: quickly at first, then at most this often.
_FIRST_POLL_SECONDS = 0.02
_MAX_POLL_SECONDS = 0.25

# Caches whose entries one process alone sees, or that keep nothing: a lease
# there would add nothing to the process lock.
_PROCESS_LOCAL_CACHES = (
    "django.core.cache.backends.locmem.LocMemCache",
    "django.core.cache.backends.dummy.DummyCache",
    "django.core.cache.backends.filebased.FileBasedCache",
)

# Weak, so that idle sessions cost nothing.
_process_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()


@dataclass(frozen=True, slots=True)
class _Lease:
    alias: str
    key: str
    token: str


def shared_cache_alias() -> str | None:
    """The cache alias holding turn leases, or ``None`` when turns are ordered per process."""
    alias = conf.get("TURN_LOCK_CACHE_ALIAS")
    if alias is None:
        return None
    backend = settings.CACHES.get(alias, {}).get("BACKEND")
    if backend is None or backend in _PROCESS_LOCAL_CACHES:
        return None
    return alias


@asynccontextmanager
async def turn_lock(session_id: str) -> AsyncIterator[None]:
    """Hold the session's turn: wait for any turn of it in this process, then in others."""
    lock = _process_locks.get(session_id)
    if lock is None:
        lock = _process_locks[session_id] = asyncio.Lock()
    async with lock:
        lease = await _acquire(session_id)
        try:
            yield
        finally:
            if lease is not None:
                # Released even when the turn is cancelled (the visitor left).
                await asyncio.shield(_release(lease, session_id))


async def _acquire(session_id: str) -> _Lease | None:
    alias = shared_cache_alias()
    if alias is None:
        return None
    lease = _Lease(alias, KEY_PREFIX + session_id, uuid.uuid4().hex)
    ttl = math.ceil(conf.get("RESPONSE_TIMEOUT_SECONDS")) + LEASE_MARGIN_SECONDS
    delay = _FIRST_POLL_SECONDS
    waited = False
    while True:
        try:
            if await _add_once_or_twice(lease, ttl):
                if waited:
                    logger.debug("Turn lock acquired", extra={"session_id": session_id})
                return lease
        except Exception:
            logger.warning(
                "Turn lock cache %r unavailable; this turn is ordered within its process only",
                alias,
                exc_info=True,
                extra={"session_id": session_id},
            )
            return None
        if not waited:
            waited = True
            logger.debug(
                "Waiting for a turn of this session on another process",
                extra={"session_id": session_id},
            )
        await asyncio.sleep(delay)
        delay = min(delay * 2, _MAX_POLL_SECONDS)


async def _add_once_or_twice(lease: _Lease, ttl: int) -> bool:
    cache = caches[lease.alias]
    try:
        return bool(await async_cache.call(cache, "add", lease.key, lease.token, ttl))
    except Exception:
        # After Redis restarts, the first command on a pooled connection fails;
        # the next one reconnects.
        return bool(await async_cache.call(cache, "add", lease.key, lease.token, ttl))


async def _release(lease: _Lease, session_id: str) -> None:
    cache = caches[lease.alias]
    try:
        # Only our own lease: after an expiry another turn may hold the key.
        await async_cache.delete_if(cache, lease.key, lease.token)
    except Exception:
        logger.warning(
            "Turn lock not released; it expires on its own",
            exc_info=True,
            extra={"session_id": session_id},
        )
