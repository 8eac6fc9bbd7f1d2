"""The connection registry: this process's open chat connections, and their caps."""

from __future__ import annotations

import pytest

from sophie_chat.connections import ConnectionRegistry, registry
from tests.support.overrides import settings_with

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_client_past_its_cap_is_refused_and_nothing_is_counted():
    connections = ConnectionRegistry()
    with settings_with(MAX_CONNECTIONS_PER_CLIENT=2):
        assert connections.open("ip:203.0.113.1")
        assert connections.open("ip:203.0.113.1")
        assert not connections.open("ip:203.0.113.1")
        assert connections.open("user:7")

    assert connections.total == 3


def test_the_process_cap_holds_for_every_client():
    connections = ConnectionRegistry()
    with settings_with(MAX_CONNECTIONS_PER_PROCESS=2):
        assert connections.open("user:1")
        assert connections.open("user:2")
        assert not connections.open("user:3")


def test_a_closed_connection_frees_its_slot():
    connections = ConnectionRegistry()
    with settings_with(MAX_CONNECTIONS_PER_CLIENT=1):
        assert connections.open("user:1")
        connections.close("user:1")
        assert connections.open("user:1")

    assert connections.total == 1


async def test_the_consumer_takes_a_slot_and_gives_it_back(connect):
    first, _ = await connect()
    await connect(client=("198.51.100.20", 1))
    assert registry.total == 2

    await first.close()

    assert registry.total == 1
