"""Calling a Django cache from async code, without blocking the event loop.

Django's cache API is synchronous. A local-memory or dummy cache is an
in-process dict behind a lock, so it is called directly: no thread hop. Any
other cache (django-redis, Memcached, files) may wait on I/O, so it runs in
a worker thread. The response cache, the turn lock and the cache rate
limiter all call their caches through :func:`call`.
"""

from __future__ import annotations

from typing import Any

from asgiref.sync import sync_to_async
from django.core.cache.backends.base import BaseCache
from django.core.cache.backends.dummy import DummyCache
from django.core.cache.backends.locmem import LocMemCache


async def call(cache: BaseCache, method: str, *args: Any) -> Any:
    """``cache.<method>(*args)``: at once for an in-process cache, else in a worker thread."""
    func = getattr(cache, method)
    if isinstance(cache, LocMemCache | DummyCache):
        return func(*args)
    return await sync_to_async(func, thread_sensitive=False)(*args)
