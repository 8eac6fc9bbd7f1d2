"""What the tests share, in one place: nothing here is a test, and no test imports another.

Fixtures live in the ``conftest.py`` files and use these modules; test
modules import from here, never from a conftest or from another test module
(``tests/test_suite_layout.py`` fails if one does).

``network``
    :func:`~tests.support.network.free_port`, plain HTTP without proxies.
``processes``
    :class:`~tests.support.processes.ServerProcess`: the launcher of every
    server process of the tests and of the benchmark.
``openai_server``
    The fake OpenAI-compatible server, in a thread or as a process; the
    tests, the benchmark and the screenshot scripts all use it.
``websocket``
    The chat's WebSocket clients: in this process (Channels' communicator)
    or over a real socket.
``chat_servers``, ``topology``
    The chat served by uvicorn and daphne; two processes sharing Redis and
    PostgreSQL.
``demo``, ``browser``
    The demo site served for Chromium; Chromium and a page with the widget.
``services``
    Whether Redis, PostgreSQL and Chromium are here; private Redis and
    PostgreSQL servers tests may stop.
``settings``
    The base of every test settings module (and of the benchmark's).
``overrides``, ``records``, ``waiting``, ``checks``, ``quickstart``
    ``settings_with``; rows made directly (``conversation``, ``make_user``);
    ``eventually``; running the system checks; the quickstart's steps, done to a fresh site.

``network``, ``processes``, ``openai_server`` and ``settings`` import
neither pytest nor the test settings: ``python -m benchmarks`` uses them.
"""
