"""The adversarial suite against a real server process (uvicorn and daphne): slots and floods.

A connection gives its slot back however it ends (issue 16, finding 1):
slots are counted per process and per client (``MAX_CONNECTIONS_PER_CLIENT``),
and a slot never given back locks a visitor out with 4429 until the process
restarts. The server's own count is read from ``chat/health/``. Floods of
messages, connections and a reader that never reads leave the server's
memory bounded and the server answering others. The rest of the suite
(fuzzing, ownership, a hostile model, log canaries) is in tests/adversarial/.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from tests.support.chat_servers import ChatServer
from tests.support.websocket import ChatClient

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


# -- floods --------------------------------------------------------------------------------

#: Growth of the server's resident memory a flood may cause (the issue saw 200 MB).
MEMORY_BOUND_MB = 60


def rss_mb(server: ChatServer) -> float:
    status = Path(f"/proc/{server.process.pid}/status").read_text()
    line = next(line for line in status.splitlines() if line.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


async def answers_ping(server: ChatServer, open_chat, within: float = 3) -> None:
    client, _ = await open_chat(server)
    async with asyncio.timeout(within):
        await client.send({"type": "ping"})
        assert await client.receive() == {"type": "pong"}
    await client.close()


async def test_a_message_flood_is_refused_past_the_queue_with_memory_bounded(
    chat_server: ChatServer, open_chat
):
    before = rss_mb(chat_server)
    clients = []
    for _ in range(4):
        client, _ = await open_chat(chat_server)
        await client.start()
        clients.append(client)
    text = "flood " * 333  # 2,000 characters
    for number in range(300):
        for client in clients:
            frame = {"type": "message", "content": text, "client_message_id": f"f{number}"}
            await client.send(frame)
    refused = 0
    for client in clients:
        with contextlib.suppress(TimeoutError):
            while True:
                frame = await client.receive(timeout=2)
                refused += frame.get("code") == "rate_limited"
    assert refused >= 4 * (300 - 50)
    assert rss_mb(chat_server) - before < MEMORY_BOUND_MB
    await answers_ping(chat_server, open_chat)
    for client in clients:
        await client.close()
    await asyncio.to_thread(chat_server.wait_until_idle, 15)


async def test_a_connection_flood_is_capped_and_every_slot_comes_back(
    limited_server: ChatServer, open_chat
):
    opened = [await open_chat(limited_server) for _ in range(10)]
    welcomed = [client for client, first in opened if first["type"] == "welcome"]
    refused = [client for client, first in opened if first.get("code") == "too_many_connections"]
    assert (len(welcomed), len(refused)) == (1, 9)
    for client, _ in opened:
        await client.close()
    await asyncio.to_thread(limited_server.wait_until_idle, 15)


async def test_a_reader_that_never_reads_costs_bounded_memory(chat_server: ChatServer, open_chat):
    before = rss_mb(chat_server)
    # A small receive queue: the client stops reading, the server's sends back up.
    ws = await connect(chat_server.ws_url, origin=chat_server.http_url, proxy=None, max_queue=1)
    reader = ChatClient(ws)
    await reader.send({"type": "session_init"})
    ping = json.dumps({"type": "ping", "pad": "p" * 30_000})
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(10):
            for _ in range(2_000):
                await ws.send(ping)
    assert rss_mb(chat_server) - before < MEMORY_BOUND_MB
    await answers_ping(chat_server, open_chat)
    ws.transport.abort()
    await asyncio.to_thread(chat_server.wait_until_idle, 15)


# -- a hostile model behind a real server -------------------------------------------------------


@pytest.mark.parametrize("name", ["object_delta", "nested", "surrogate", "mid_stream_error"])
async def test_a_hostile_model_stream_ends_in_a_clean_answer(
    chat_server: ChatServer, open_chat, fake_openai, name
):
    fake_openai.queue("hostile", name=name)
    client, _ = await open_chat(chat_server)
    await client.start()
    frames = await client.ask(f"Hostile model {name} on {chat_server.kind}?", f"h-{name}")
    assert frames[-1]["type"] == "stream_end", frames[-1]
    answer = frames[-1]["message"]
    assert answer["metadata"]["fallback"] is (name != "surrogate")
    assert "\ud800" not in answer["content"]
    assert "<b>" not in answer["content"]
    await client.close()
