"""Database helpers safe to import from a settings file (nothing is imported at import time)."""

from __future__ import annotations

import threading
from typing import Any


def check_pooled_connection(connection: Any) -> None:
    """Check a pooled connection before it is used (``OPTIONS["pool"]["check"]``).

    psycopg's own check (:meth:`psycopg_pool.ConnectionPool.check_connection`),
    plus one thing: when it finds a broken connection, every idle connection
    of the pool is checked at once (in the background) and the broken ones
    replaced, so after PostgreSQL restarts the next message does not wait for
    the pool to find them one at a time. Raises like psycopg's check.
    """
    from psycopg_pool import ConnectionPool

    try:
        ConnectionPool.check_connection(connection)
    except Exception:
        pool = getattr(connection, "_pool", None)
        if pool is not None:
            threading.Thread(target=pool.check, name="sophie-pool-check", daemon=True).start()
        raise
