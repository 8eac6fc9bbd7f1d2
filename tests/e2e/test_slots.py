"""A connection gives its slot back however it ends (issue 16, finding 1).

Slots are counted per process and per client (``MAX_CONNECTIONS_PER_CLIENT``);
a slot that is never given back locks a visitor out with 4429 until the
process restarts. The server's own count is read from ``chat/health/``.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.support.chat_servers import ChatServer

pytestmark = pytest.mark.server


async def test_error_echoing_a_lone_surrogate_is_answered_and_gives_the_slot_back(
    chat_server: ChatServer, open_chat
):
    client, _ = await open_chat(chat_server)
    # A JSON escape: the frame is valid UTF-8, the decoded type is a lone surrogate.
    await client.send('{"type":"\\ud800"}')
    error = await client.receive()
    assert error["type"] == "error"
    assert error["code"] == "invalid_message"
    await client.send({"type": "ping"})
    assert await client.receive() == {"type": "pong"}
    await client.close()
    chat_server.wait_until_idle()


async def test_lone_surrogate_in_ids_is_invalid_message(chat_server: ChatServer, open_chat):
    client, _ = await open_chat(chat_server)
    await client.start()
    await client.send('{"type":"message","content":"Hello there","client_message_id":"\\ud800"}')
    assert (await client.receive())["code"] == "invalid_message"
    await client.send('{"type":"feedback","message_id":"\\udfff","rating":"up"}')
    assert (await client.receive())["code"] == "invalid_message"
    await client.close()
    chat_server.wait_until_idle()


async def test_closing_while_frames_are_answered_gives_the_slot_back(
    chat_server: ChatServer, open_chat
):
    for _attempt in range(5):
        client, _ = await open_chat(chat_server)
        await client.start()
        for _number in range(200):
            await client.send({"type": "ping"})
        client.ws.transport.abort()  # no closing handshake: the server learns it on its next send
    # In a thread: the aborted sockets are closed by this event loop.
    await asyncio.to_thread(chat_server.wait_until_idle, 15)
