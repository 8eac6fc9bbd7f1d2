"""sophie-chat's benchmark: Sophie beside a bare and a naive Channels consumer.

Run it with ``python -m benchmarks`` (or ``make bench``); see
``docs/performance.md`` for what it measures and the committed results.

Modules:

* :mod:`benchmarks.fakemodel`: a fast OpenAI-compatible model server with a
  configurable time to first token, token rate and answer length.
* :mod:`benchmarks.baselines`: the bare and the naive consumer.
* :mod:`benchmarks.settings`, :mod:`benchmarks.asgi`: the Django project
  every server under test runs (Sophie at ``ws/chat/``, the baselines at
  ``ws/bare/`` and ``ws/naive/``).
* :mod:`benchmarks.serve`: starts uvicorn with a raised file limit.
* :mod:`benchmarks.loadgen`: the load generator (asyncio + ``websockets``).
* :mod:`benchmarks.runner`: starts everything, runs the scenarios side by
  side, alternating, and writes the results.
* :mod:`benchmarks.report`: the Markdown table and the PNG plot.
"""
