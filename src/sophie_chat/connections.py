"""The chat connections this server process holds, in total and per client.

:data:`registry` is the one owner of these counts: the consumer takes a slot
when a connection opens (refused past ``MAX_CONNECTIONS_PER_PROCESS`` or
``MAX_CONNECTIONS_PER_CLIENT``) and gives it back when it closes; the health
endpoint reads :attr:`ConnectionRegistry.total`. A client is a logged-in user
(``user:<pk>``) or an IP address (``ip:<address>``).
"""

from __future__ import annotations

import collections

from sophie_chat import conf


class ConnectionRegistry:
    """Open connections of one process. Not thread-safe: the event loop owns it."""

    def __init__(self) -> None:
        self._total = 0
        self._by_client: collections.Counter[str] = collections.Counter()

    @property
    def total(self) -> int:
        """How many connections are open."""
        return self._total

    def open(self, client: str) -> bool:
        """Count a new connection of ``client``; False (nothing counted) when a cap is reached."""
        if self._total >= conf.get("MAX_CONNECTIONS_PER_PROCESS"):
            return False
        if self._by_client[client] >= conf.get("MAX_CONNECTIONS_PER_CLIENT"):
            return False
        self._total += 1
        self._by_client[client] += 1
        return True

    def close(self, client: str) -> None:
        """Forget one connection of ``client`` counted by :meth:`open`."""
        self._total -= 1
        self._by_client[client] -= 1
        if self._by_client[client] <= 0:
            del self._by_client[client]

    def reset(self) -> None:
        """Forget every connection (for tests: each starts with none open)."""
        self._total = 0
        self._by_client.clear()


#: This process's registry.
registry = ConnectionRegistry()
