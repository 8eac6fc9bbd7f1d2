"""Prometheus metrics, when ``prometheus_client`` is installed.

``pip install "sophie-chat[prometheus]"`` and the counters and histograms
below are kept in prometheus_client's default registry, so an exporter the
site already runs (``django-prometheus``, ``prometheus_client.make_asgi_app``)
shows them; ``SOPHIE_CHAT["METRICS"]["ENDPOINT"]`` also serves them at
``chat/metrics/``. Without the package, or with
``SOPHIE_CHAT["METRICS"]["ENABLED"] = False``, every function here does
nothing.

Several server processes: set the environment variable
``PROMETHEUS_MULTIPROC_DIR`` to an empty directory before they start;
prometheus_client then keeps each process's values in files there, and
:func:`exposition` adds them up. See ``docs/metrics.md``.

Nothing here touches the network or the database, and nothing is recorded
per streamed token: an answer is measured once, when it is stored.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache
from typing import Any, NamedTuple

from sophie_chat import conf

try:
    import prometheus_client
    from prometheus_client import multiprocess
except ImportError:  # the optional extra is not installed
    prometheus_client = None  # type: ignore[assignment]
    multiprocess = None  # type: ignore[assignment]

#: Seconds; wide enough for a slow model at the default 30 s timeout.
#: Waiting for a person takes seconds to many minutes.
WAIT_BUCKETS = (5, 10, 20, 30, 60, 120, 180, 300, 600, 900, 1800, 3600)
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 7.5, 10, 15, 20, 30, 60)


@dataclass(frozen=True, slots=True)
class _Instruments:
    connections: Any
    open_connections: Any
    turns: Any
    errors: Any
    model_errors: Any
    first_token: Any
    response: Any
    tokens: Any
    tool_calls: Any
    confirmations: Any
    handoffs: Any
    handoff_wait: Any
    handoff_first_reply: Any


def available() -> bool:
    """Whether prometheus_client is installed."""
    return prometheus_client is not None


def enabled() -> bool:
    """Whether metrics are being recorded (installed, and not turned off)."""
    return prometheus_client is not None and bool(conf.get("METRICS").get("ENABLED", True))


@cache
def _instruments() -> _Instruments:
    # Created once per process: a registry refuses a second metric of the same name.
    p = prometheus_client
    return _Instruments(
        connections=p.Counter(
            "sophie_chat_connections",
            "Chat WebSocket connections, by outcome (accepted or refused).",
            ["outcome"],
        ),
        open_connections=p.Gauge(
            "sophie_chat_open_connections",
            "Chat WebSocket connections open now.",
            multiprocess_mode="livesum",
        ),
        turns=p.Counter(
            "sophie_chat_turns",
            "Answers stored, by outcome (model, cache, fallback, interrupted, failed).",
            ["outcome"],
        ),
        errors=p.Counter(
            "sophie_chat_errors",
            "Error frames sent to clients, by protocol error code.",
            ["code"],
        ),
        model_errors=p.Counter(
            "sophie_chat_model_errors",
            "Failed model calls, by error (LLMTimeout, LLMUnavailable, LLMRateLimited).",
            ["error"],
        ),
        first_token=p.Histogram(
            "sophie_chat_first_token_seconds",
            "Time from a question to the first piece of its answer.",
            ["source"],
            buckets=LATENCY_BUCKETS,
        ),
        response=p.Histogram(
            "sophie_chat_response_seconds",
            "Time from a question to its complete answer.",
            ["source"],
            buckets=LATENCY_BUCKETS,
        ),
        tokens=p.Counter(
            "sophie_chat_tokens",
            "Model tokens, by model and kind (prompt or completion).",
            ["model", "kind"],
        ),
        tool_calls=p.Counter(
            "sophie_chat_tool_calls",
            "Tool calls, by tool and status (ok, error, refused, cancelled, timeout).",
            ["tool", "status"],
        ),
        confirmations=p.Counter(
            "sophie_chat_confirmations",
            "Confirmations of tool calls, by outcome (accepted, declined, expired).",
            ["outcome"],
        ),
        handoffs=p.Counter(
            "sophie_chat_handoffs",
            "Handoffs to a person, by event (waiting, unavailable, claimed, ended, "
            "cancelled, abandoned).",
            ["event"],
        ),
        handoff_wait=p.Histogram(
            "sophie_chat_handoff_wait_seconds",
            "Time from asking for a person to an agent claiming the conversation.",
            buckets=WAIT_BUCKETS,
        ),
        handoff_first_reply=p.Histogram(
            "sophie_chat_handoff_first_reply_seconds",
            "Time from asking for a person to the agent's first message.",
            buckets=WAIT_BUCKETS,
        ),
    )


def _get() -> _Instruments | None:
    return _instruments() if enabled() else None


def connection_opened() -> None:
    """A chat connection was accepted."""
    if (m := _get()) is not None:
        m.connections.labels(outcome="accepted").inc()
        m.open_connections.inc()


def connection_closed() -> None:
    """An accepted chat connection ended."""
    if (m := _get()) is not None:
        m.open_connections.dec()


def connection_refused() -> None:
    """A chat connection was refused (caps, anonymous chat off)."""
    if (m := _get()) is not None:
        m.connections.labels(outcome="refused").inc()


def error_sent(code: str) -> None:
    """An error frame with this protocol code was sent."""
    if (m := _get()) is not None:
        m.errors.labels(code=code).inc()


def model_error(error: str) -> None:
    """A model call failed with this error class name."""
    if (m := _get()) is not None:
        m.model_errors.labels(error=error).inc()


def tool_called(tool: str, status: str) -> None:
    """A tool call ended with this status (only configured tools' names are labels)."""
    if (m := _get()) is not None:
        m.tool_calls.labels(tool=tool, status=status).inc()


def confirmation_decided(outcome: str) -> None:
    """A tool call's confirmation was accepted, declined or expired."""
    if (m := _get()) is not None:
        m.confirmations.labels(outcome=outcome).inc()


def answer_stored(
    *,
    status: str,
    metadata: dict[str, Any],
    first_token_ms: int | None,
    total_ms: int,
    prompt_tokens: int | None,
    completion_tokens: int | None,
) -> None:
    """An assistant answer was stored: count it, its latencies and its tokens."""
    if (m := _get()) is None:
        return
    source = (
        "cache" if metadata.get("cached") else "fallback" if metadata.get("fallback") else "model"
    )
    outcome = source if status == "complete" else status
    m.turns.labels(outcome=outcome).inc()
    if first_token_ms is not None:
        m.first_token.labels(source=source).observe(first_token_ms / 1000)
    if status == "complete":
        m.response.labels(source=source).observe(total_ms / 1000)
    model = str(metadata.get("model") or "unknown")
    if prompt_tokens:
        m.tokens.labels(model=model, kind="prompt").inc(prompt_tokens)
    if completion_tokens:
        m.tokens.labels(model=model, kind="completion").inc(completion_tokens)


def handoff_event(event: str, *, wait_seconds: float | None = None) -> None:
    """A handoff changed state; ``wait_seconds``: since it was asked for (a claim)."""
    if (m := _get()) is not None:
        m.handoffs.labels(event=event).inc()
        if wait_seconds is not None:
            m.handoff_wait.observe(wait_seconds)


def handoff_first_reply(seconds: float) -> None:
    """An agent sent the first message of a handoff, ``seconds`` after it was asked for."""
    if (m := _get()) is not None:
        m.handoff_first_reply.observe(seconds)


def multiprocess_mode() -> bool:
    """Whether values are shared between processes through ``PROMETHEUS_MULTIPROC_DIR``."""
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


class Exposition(NamedTuple):
    body: bytes
    content_type: str


def exposition() -> Exposition:
    """The metrics in Prometheus' text format, and its content type.

    In multi-process mode, the values of every process that wrote to
    ``PROMETHEUS_MULTIPROC_DIR``, added up; otherwise this process's
    default registry. Raises ``RuntimeError`` without prometheus_client.
    """
    if prometheus_client is None:
        raise RuntimeError("prometheus_client is not installed")
    if multiprocess_mode():
        registry = prometheus_client.CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = prometheus_client.REGISTRY
    return Exposition(
        prometheus_client.generate_latest(registry), prometheus_client.CONTENT_TYPE_LATEST
    )
