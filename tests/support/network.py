"""Ports, addresses and plain HTTP for tests, the benchmark and the screenshot scripts.

Every server a test starts binds 127.0.0.1; requests to it never go through
a proxy from the environment.
"""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
import uuid
from typing import Any

_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on at the time of the call.

    Something else may take it before the caller binds it: launchers that
    start a server on it retry with another (see
    :meth:`tests.support.processes.ServerDidNotStart.port_taken`).
    """
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(port: int, timeout: float = 0.2) -> bool:
    """Whether something accepts connections on 127.0.0.1:``port``."""
    with socket.socket() as sock:
        sock.settimeout(timeout)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def own_address() -> tuple[str, int]:
    """A client address (``scope["client"]``) of the caller's own.

    Rate counters are per IP and outlive a test: a test that counts gets an
    address no other test uses.
    """
    number = uuid.uuid4().int
    return (f"198.18.{number % 250}.{(number >> 8) % 250 + 1}", 50000)


def http(method: str, url: str, body: Any = None, timeout: float = 5) -> tuple[int, Any]:
    """``(status, parsed JSON or text)`` of one HTTP request; an error status is returned,
    not raised."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with _opener.open(request, timeout=timeout) as response:
            status, raw, kind = (
                response.status,
                response.read(),
                response.headers.get_content_type(),
            )
    except urllib.error.HTTPError as error:
        status, raw, kind = error.code, error.read(), error.headers.get_content_type()
    text = raw.decode("utf-8", "replace")
    return status, json.loads(text) if kind == "application/json" else text


def http_json(method: str, url: str, body: Any = None, timeout: float = 5) -> Any:
    """The JSON body of a request that must succeed; :class:`OSError` otherwise."""
    status, payload = http(method, url, body, timeout)
    if status != 200:
        raise OSError(f"{method} {url} answered {status}: {payload!r}")
    return payload
