"""Start one server under test: uvicorn, with the open-file limit raised first.

``python -m benchmarks.serve --port 8001`` runs::

    uvicorn benchmarks.asgi:application --host 127.0.0.1 --port 8001 \\
        --loop uvloop --http httptools --ws websockets-sansio \\
        --ws-per-message-deflate false --lifespan off --no-access-log \\
        --log-level warning --backlog 4096

(``--loop asyncio --http h11`` when uvloop or httptools is not installed).
Every connection is a file descriptor, so 10,000 sessions need the soft
``RLIMIT_NOFILE`` raised to the hard limit, which uvicorn does not do.
"""

from __future__ import annotations

import importlib.util
import sys

from tests.support.processes import raise_file_limit


def uvicorn_flags(port: int, app: str = "benchmarks.asgi:application") -> list[str]:
    """The uvicorn command line arguments of a server under test."""
    fast_loop = importlib.util.find_spec("uvloop") is not None
    fast_http = importlib.util.find_spec("httptools") is not None
    return [
        app,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--loop",
        "uvloop" if fast_loop else "asyncio",
        "--http",
        "httptools" if fast_http else "h11",
        "--ws",
        "websockets-sansio",
        # Compressing 30-byte deltas costs CPU and a zlib context per connection.
        "--ws-per-message-deflate",
        "false",
        "--lifespan",
        "off",
        "--no-access-log",
        "--log-level",
        "warning",
        # Thousands of sessions connect at once; the kernel caps it at somaxconn.
        "--backlog",
        "4096",
    ]


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    port = 8000
    if "--port" in args:
        port = int(args[args.index("--port") + 1])
    raise_file_limit()
    import uvicorn.main

    uvicorn.main.main(uvicorn_flags(port), standalone_mode=True)


if __name__ == "__main__":
    main()
