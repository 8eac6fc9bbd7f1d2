"""Sophie's database threads, and a check for Django's PostgreSQL connection pool.

Safe to import from a settings file (for :func:`pool_options` and
:func:`check_pooled_connection`):
nothing here reads settings or needs the app registry at import time, so
Sophie's model is looked up in the registry when first needed.
"""

from __future__ import annotations

import functools
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import django
from asgiref.sync import AsyncToSync, SyncToAsync
from channels.db import database_sync_to_async
from django.apps import apps
from django.core.signals import setting_changed
from django.db import close_old_connections, connections, router
from django.dispatch import receiver

from sophie_chat import conf


def check_pooled_connection(connection: Any) -> None:
    """Check a pooled connection before it is used (``OPTIONS["pool"]["check"]``).

    psycopg's own check (:meth:`psycopg_pool.ConnectionPool.check_connection`),
    plus one thing: when it finds a broken connection, every idle connection
    of the pool is checked at once (in the background) and the broken ones
    replaced, so after PostgreSQL restarts the next message does not wait for
    the pool to find them one at a time. Raises like psycopg's check.
    """
    # Imported when called: psycopg_pool comes with the optional "postgres" extra.
    from psycopg_pool import ConnectionPool

    try:
        ConnectionPool.check_connection(connection)
    except Exception:
        pool = getattr(connection, "_pool", None)
        if pool is not None:
            threading.Thread(target=pool.check, name="sophie-pool-check", daemon=True).start()
        raise


def pool_options(**options: Any) -> dict[str, Any]:
    """``OPTIONS["pool"]`` for Django's PostgreSQL pool, with :func:`check_pooled_connection`
    where Django lets the pool have it.

    Django 6.1 and newer take a pool's ``check`` from these options. Django 5.2
    and 6.0 pass their own (psycopg's check, only with ``CONN_HEALTH_CHECKS``)
    and fail on a second one, so there the options are returned as given and
    the database's ``CONN_HEALTH_CHECKS = True`` checks connections before use.
    """
    if django.VERSION >= (6, 1):
        options.setdefault("check", check_pooled_connection)
    return options


# Database threads -------------------------------------------------------------------
#
# Channels' ``database_sync_to_async`` runs every query of a process in one
# thread, so one turn's commit waits for every other turn's. On a database
# that takes concurrent writes, Sophie's units of work run in a small pool of
# threads instead (``SOPHIE_CHAT["DATABASE_THREADS"]``), each with its own
# connection; SQLite keeps the one thread, as it has one writer anyway.

_lock = threading.Lock()
#: The executor, or None for Channels' one thread; _UNSET until first used and
#: after a change of settings.
_UNSET = object()
_pool: Any = _UNSET
_wrappers: dict[tuple[Any, Any], Any] = {}
_CALLER = object()


def database_threads() -> int:
    """How many threads run Sophie's queries (``DATABASE_THREADS``, or its default)."""
    configured = conf.get("DATABASE_THREADS")
    if configured is not None:
        return configured
    alias = router.db_for_write(apps.get_model("sophie_chat", "ChatMessage"))
    return 1 if connections[alias].vendor == "sqlite" else 4


def _executor() -> Any:
    global _pool
    if _pool is _UNSET:
        with _lock:
            if _pool is _UNSET:
                threads = database_threads()
                if threads > 1:
                    _pool = ThreadPoolExecutor(threads, thread_name_prefix="sophie-db")
                else:
                    _pool = None
    return _pool


def reset_database_threads(*, wait: bool = False) -> None:
    """Forget the pool, for a change of settings: its threads end when idle.

    With ``wait``, return once the work already given to them is done (for
    a test suite about to empty the database).
    """
    global _pool
    with _lock:
        old, _pool = _pool, _UNSET
        _wrappers.clear()
    if old is not _UNSET and old is not None:
        old.shutdown(wait=wait)


@receiver(setting_changed)
def _forget(*, setting: str, **kwargs: Any) -> None:
    # The number of threads follows the settings and the database's vendor.
    if setting in {conf.SETTING_NAME, "DATABASES", "DATABASE_ROUTERS"}:
        reset_database_threads()


def database_call(func: Any) -> Any:
    """``channels.db.database_sync_to_async``, in Sophie's database threads.

    Like Channels, it closes broken and over-age connections before and
    after each call (``close_old_connections``), here in the call's own
    context: Django's connections are context-local, and a check made
    outside it would not see (nor return to a pool) the connection the call
    opened.
    """
    def checked(*args: Any, **kwargs: Any) -> Any:
        close_old_connections()
        try:
            return func(*args, **kwargs)
        finally:
            close_old_connections()

    @functools.wraps(func)
    async def call(*args: Any, **kwargs: Any) -> Any:
        # async_to_sync from a sync thread that may be in a transaction (a
        # TestCase, a view): run in that thread and leave its connection be,
        # as Django's async ORM does.
        key = _CALLER if _called_from_sync_code() else _executor()
        wrapper = _wrappers.get((func, key))
        if wrapper is None:
            if key is _CALLER:
                wrapper = SyncToAsync(func)
            elif key is None:
                wrapper = database_sync_to_async(func)
            else:
                wrapper = SyncToAsync(checked, thread_sensitive=False, executor=key)
            _wrappers[(func, key)] = wrapper
        return await wrapper(*args, **kwargs)

    return call


def _called_from_sync_code() -> bool:
    """Whether this coroutine runs for ``async_to_sync`` in a sync thread."""
    return getattr(AsyncToSync.executors, "current", None) is not None


def _apply(func: Any, *args: Any, **kwargs: Any) -> Any:
    return func(*args, **kwargs)


#: ``await run_in_database_thread(func, *args)``: one call of :func:`database_call`.
run_in_database_thread = database_call(_apply)
