"""The load generator: simulated chat sessions over real WebSockets.

Each session connects (``welcome``), starts a conversation (``session_init``
-> ``session``), then sends ``message`` frames and reads the answer's
frames, as the widget does. Two ways of sending:

* closed loop (no ``--rate``): every session sends its next message as soon
  as the previous answer ended (``stream_end``), plus ``--think`` seconds,
  until ``--duration`` seconds have passed or it sent ``--messages``;
* open loop (``--rate R``): R messages a second in total, spread evenly over
  time and dealt to the sessions in turn, whether earlier answers are done
  or not; latencies count from the scheduled time, so a slow server cannot
  hide its queue (no coordinated omission).

Measured per answer: time to first delta (send -> first ``stream_delta``)
and to ``stream_end``; per session the connect time (TCP + WebSocket
handshake + ``welcome``). An answer whose deltas do not join to the stored
content, an ``error`` frame, a refused or dropped connection and an answer
slower than ``--timeout`` are errors. ``--hold`` connects the sessions, says
``READY`` on stdout and keeps them idle until a line arrives on stdin.

The result is one JSON line on stdout starting with ``RESULT``::

    python -m benchmarks.loadgen --url ws://127.0.0.1:8001/ws/chat/ --sessions 100 --duration 10
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import sys
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from benchmarks.serve import raise_file_limit

# Questions a visitor of the demo site asks; a session and message number is
# appended so that no two are alike and Sophie's response cache never answers.
QUESTIONS = (
    "How much does a house cleaning cost?",
    "Can I reschedule a booking for tomorrow?",
    "Which payment methods do you accept?",
    "Quanto custa uma faxina completa?",
    "Do your electricians bring their own tools?",
    "Como cancelo um agendamento?",
    "Is there a guarantee if the repair fails again?",
    "Vocês atendem aos domingos?",
)


@dataclass
class Plan:
    url: str
    sessions: int
    messages: int = 0
    duration: float = 0.0
    rate: float = 0.0
    think: float = 0.0
    timeout: float = 60.0
    connect_concurrency: int = 200
    hold: bool = False


@dataclass
class Results:
    connect_ms: list[float] = field(default_factory=list)
    ttfd_ms: list[float] = field(default_factory=list)
    ttend_ms: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    deltas: int = 0
    first_send: float | None = None
    last_end: float = 0.0
    max_lag_ms: float = 0.0

    def as_dict(self, plan: Plan, started: float) -> dict[str, Any]:
        window = (self.last_end - self.first_send) if self.first_send is not None else 0.0
        replies = len(self.ttend_ms)
        return {
            "url": plan.url,
            "sessions": plan.sessions,
            "connected": len(self.connect_ms),
            "mode": "open" if plan.rate else ("hold" if plan.hold else "closed"),
            "rate": plan.rate,
            "replies": replies,
            "window_s": round(window, 3),
            "replies_per_s": round(replies / window, 2) if window > 0 else 0.0,
            "deltas": self.deltas,
            "errors": dict(self.errors),
            "max_lag_ms": round(self.max_lag_ms, 2),
            "wall_s": round(time.perf_counter() - started, 3),
            "connect_ms": [round(v, 3) for v in self.connect_ms],
            "ttfd_ms": [round(v, 3) for v in self.ttfd_ms],
            "ttend_ms": [round(v, 3) for v in self.ttend_ms],
        }


#: This load generator's own mark in every question. Sessions are numbered from 0 in
#: every run, and a server's response cache outlives a run (a round, a scenario): without
#: it a later round's questions would be answered from the cache.
RUN = secrets.token_hex(4)


def question(session: int, number: int) -> str:
    topic = QUESTIONS[(session + number) % len(QUESTIONS)]
    return f"{topic} (visitor {session}, #{number}, run {RUN})"


class _Answer:
    """What one answer has shown so far."""

    __slots__ = ("deltas", "first", "sent")

    def __init__(self, sent: float) -> None:
        self.sent = sent
        self.first: float | None = None
        self.deltas: list[str] = []


class Session:
    def __init__(self, index: int, plan: Plan, results: Results) -> None:
        self.index = index
        self.plan = plan
        self.results = results
        self.ws: ClientConnection | None = None
        self.pending: deque[_Answer] = deque()
        self.sent = 0

    async def open(self, gate: asyncio.Semaphore) -> bool:
        origin = self.plan.url.replace("ws://", "http://", 1).split("/ws/", 1)[0]
        async with gate:
            started = time.perf_counter()
            try:
                self.ws = await connect(
                    self.plan.url,
                    origin=origin,  # type: ignore[arg-type]
                    compression=None,
                    open_timeout=60,
                    ping_interval=None,
                    close_timeout=2,
                    proxy=None,
                    max_queue=256,
                )
                welcome = json.loads(await asyncio.wait_for(self.ws.recv(), 30))
                if welcome.get("type") != "welcome":
                    self.results.errors[f"refused:{welcome.get('code')}"] += 1
                    return False
                self.results.connect_ms.append((time.perf_counter() - started) * 1000)
                await self.ws.send('{"type":"session_init"}')
                while True:
                    frame = json.loads(await asyncio.wait_for(self.ws.recv(), 60))
                    if frame.get("type") == "session":
                        return True
                    if frame.get("type") == "error":
                        self.results.errors[f"error:{frame.get('code')}"] += 1
                        return False
            except (OSError, TimeoutError, ConnectionClosed) as exc:
                self.results.errors[f"connect:{type(exc).__name__}"] += 1
                return False

    async def send(self, scheduled: float, number: int) -> None:
        assert self.ws is not None
        now = time.perf_counter()
        lag = (now - scheduled) * 1000
        if lag > self.results.max_lag_ms:
            self.results.max_lag_ms = lag
        if self.results.first_send is None or scheduled < self.results.first_send:
            self.results.first_send = scheduled
        self.pending.append(_Answer(scheduled))
        self.sent += 1
        await self.ws.send(
            json.dumps(
                {
                    "type": "message",
                    "content": question(self.index, number),
                    "client_message_id": f"s{self.index}-m{number}",
                }
            )
        )

    async def read_until_idle(self, all_sent: asyncio.Event | None = None) -> None:
        """Read frames until every sent message is answered (and, open loop, all are sent)."""
        assert self.ws is not None
        results = self.results
        while self.pending or (all_sent is not None and not all_sent.is_set()):
            try:
                # Short waits: an answer's deadline counts from when it was sent.
                text = await asyncio.wait_for(self.ws.recv(), 1.0)
            except TimeoutError:
                if self.pending and time.perf_counter() - self.pending[0].sent > self.plan.timeout:
                    results.errors["timeout"] += 1
                    self.pending.clear()
                    return
                continue
            except ConnectionClosed:
                results.errors["closed"] += 1 + max(len(self.pending) - 1, 0)
                self.pending.clear()
                return
            frame = json.loads(text)
            kind = frame.get("type")
            if kind == "stream_delta":
                answer = self.pending[0]
                if answer.first is None:
                    answer.first = time.perf_counter()
                answer.deltas.append(frame["delta"])
                results.deltas += 1
            elif kind == "stream_end":
                now = time.perf_counter()
                answer = self.pending.popleft()
                if answer.first is None or "".join(answer.deltas) != frame["message"]["content"]:
                    results.errors["content_mismatch"] += 1
                else:
                    results.ttfd_ms.append((answer.first - answer.sent) * 1000)
                    results.ttend_ms.append((now - answer.sent) * 1000)
                results.last_end = max(results.last_end, now)
            elif kind == "error":
                results.errors[f"error:{frame.get('code')}"] += 1
                if self.pending:
                    self.pending.popleft()

    async def closed_loop(self, start: float, deadline: float) -> None:
        number = 0
        await asyncio.sleep(max(0.0, start - time.perf_counter()))
        while time.perf_counter() < deadline and (
            not self.plan.messages or number < self.plan.messages
        ):
            await self.send(time.perf_counter(), number)
            number += 1
            await self.read_until_idle()
            if self.ws is None or self.ws.state.name != "OPEN":
                return
            if self.plan.think:
                await asyncio.sleep(self.plan.think)

    async def open_loop(self, times: list[float]) -> None:
        all_sent = asyncio.Event()
        reader = asyncio.create_task(self.read_until_idle(all_sent))
        try:
            for number, scheduled in enumerate(times):
                await asyncio.sleep(max(0.0, scheduled - time.perf_counter()))
                if reader.done():
                    break
                await self.send(scheduled, number)
        except ConnectionClosed:
            self.results.errors["closed"] += 1
        finally:
            all_sent.set()
            await reader

    async def close(self) -> None:
        if self.ws is not None:
            with contextlib.suppress(Exception):
                await self.ws.close()


async def run(plan: Plan) -> dict[str, Any]:
    results = Results()
    started = time.perf_counter()
    gate = asyncio.Semaphore(plan.connect_concurrency)
    sessions = [Session(i, plan, results) for i in range(plan.sessions)]
    opened = await asyncio.gather(*(s.open(gate) for s in sessions))
    live = [s for s, ok in zip(sessions, opened, strict=True) if ok]
    try:
        if plan.hold:
            emit("READY " + json.dumps({"connected": len(live)}))
            await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        elif plan.rate:
            count = (
                plan.messages * plan.sessions if plan.messages else int(plan.rate * plan.duration)
            )
            start = time.perf_counter() + 0.2
            schedule: list[list[float]] = [[] for _ in sessions]
            for k in range(count):
                schedule[k % len(sessions)].append(start + k / plan.rate)
            await asyncio.gather(
                *(s.open_loop(schedule[s.index]) for s in live if schedule[s.index])
            )
        else:
            start = time.perf_counter() + 0.2
            deadline = start + (plan.duration or float("inf"))
            await asyncio.gather(*(s.closed_loop(start, deadline) for s in live))
    finally:
        await asyncio.gather(*(s.close() for s in live))
    return results.as_dict(plan, started)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.loadgen", description=__doc__)
    parser.add_argument("--url", required=True, help="ws://host:port/ws/chat/")
    parser.add_argument("--sessions", type=int, default=10)
    parser.add_argument("--messages", type=int, default=0, help="per session (0: no cap)")
    parser.add_argument("--duration", type=float, default=0.0, help="seconds of sending")
    parser.add_argument("--rate", type=float, default=0.0, help="messages/s in total (open loop)")
    parser.add_argument("--think", type=float, default=0.0, help="closed loop pause, seconds")
    parser.add_argument("--timeout", type=float, default=60.0, help="longest answer, seconds")
    parser.add_argument("--hold", action="store_true", help="connect, then stay idle")
    args = parser.parse_args(argv)
    if not (args.hold or args.messages or args.duration):
        parser.error("give --messages, --duration or --hold")
    raise_file_limit()
    plan = Plan(
        url=args.url,
        sessions=args.sessions,
        messages=args.messages,
        duration=args.duration,
        rate=args.rate,
        think=args.think,
        timeout=args.timeout,
        hold=args.hold,
    )
    try:
        import uvloop
    except ImportError:
        result = asyncio.run(run(plan))
    else:
        result = uvloop.run(run(plan))
    emit("RESULT " + json.dumps(result))


def emit(line: str) -> None:
    """Write one line to stdout in full.

    The result is hundreds of KiB; unbuffered (``PYTHONUNBUFFERED``, as the
    runner starts us), ``print`` hands it to one ``write`` that a pipe may
    take only in part, and the rest is lost.
    """
    sys.stdout.flush()
    view = memoryview((line + "\n").encode())
    while view:
        view = view[os.write(sys.stdout.fileno(), view) :]


if __name__ == "__main__":
    main()
