"""sophie-chat's benchmark: Sophie beside a bare and a naive Channels consumer.

Run it with ``python -m benchmarks`` (or ``make bench``); see
``docs/performance.md`` for what it measures and the committed results.

Modules:

* ``tests/support/openai_server.py``: the test suite's fake OpenAI-compatible
  server, the model, with a configurable time to first token, token rate
  and answer length. The benchmark shares the test suite's process
  launcher and fake model (``tests/support``) rather than keeping copies.
* :mod:`benchmarks.baselines`: the bare and the naive consumer.
* :mod:`benchmarks.configurations`: the configurations compared (Sophie as
  the quickstart, the deployment page and the benchmark's tuned settings
  configure her, and the baselines), the documented ones read from the docs.
* :mod:`benchmarks.settings`, :mod:`benchmarks.asgi`: the Django project
  every server under test runs (Sophie at ``ws/chat/``, the baselines at
  ``ws/bare/`` and ``ws/naive/``), in the settings of its configuration.
* :mod:`benchmarks.serve`: starts uvicorn with a raised file limit.
* :mod:`benchmarks.loadgen`: the load generator (asyncio + ``websockets``).
* :mod:`benchmarks.runner`: starts everything, runs the scenarios side by
  side, alternating, and writes the results.
* :mod:`benchmarks.report`: the Markdown table and the PNG plot.
"""
