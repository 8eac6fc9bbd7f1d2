"""A brand-new Django project with only the quickstart's steps: the widget works as it is.

``django-admin startproject mysite``, the quickstart's settings, ``asgi.py``,
URL include and template tag (the same snippets ``tests/e2e/test_wheel_install.py``
checks against docs/quickstart.md), then step 7: daphne first in
``INSTALLED_APPS`` and ``manage.py runserver``. No CSP, no
``LocaleMiddleware``, no theming: default settings everywhere. The model is
the fake OpenAI server, reached through the SDK's ``OPENAI_BASE_URL``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

from tests.support.network import free_port
from tests.support.openai_server import API_KEY, MODEL_REPLY
from tests.support.processes import ServerProcess, project_env, run_command
from tests.support.quickstart import apply_quickstart

pytestmark = pytest.mark.browser

# Step 7 of the quickstart: daphne's runserver serves pages, static files and the WebSocket.
DAPHNE_FIRST = 'INSTALLED_APPS = ["daphne", *INSTALLED_APPS]'


@pytest.fixture(scope="module")
def fresh_site(tmp_path_factory: pytest.TempPathFactory, fake_openai_process) -> Iterator[str]:
    work = tmp_path_factory.mktemp("fresh-site")
    env = project_env(OPENAI_API_KEY=API_KEY, OPENAI_BASE_URL=fake_openai_process.url)
    run_command([sys.executable, "-m", "django", "startproject", "mysite"], cwd=work, env=env)
    project = work / "mysite"
    apply_quickstart(project)
    settings = project / "mysite" / "settings.py"
    settings.write_text(f"{settings.read_text()}\n{DAPHNE_FIRST}\n")
    setup = (["migrate", "--noinput", "-v", "0"], ["populate_knowledge_base", "knowledge.json"])
    for command in setup:
        run_command([sys.executable, "manage.py", *command], cwd=project, env=env)

    port = free_port()
    process = ServerProcess(
        "runserver (fresh mysite)",
        [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
        env=env,
        cwd=project,
        log_path=work / "runserver.log",
    )
    try:
        process.wait_until_healthy(f"http://127.0.0.1:{port}/chat/health/")
        yield f"http://127.0.0.1:{port}"
    finally:
        process.stop()


def test_widget_tag_alone_gives_a_fresh_site_a_working_chat(fresh_site, fake_openai, open_tab):
    tab = open_tab(fresh_site).open()

    tab.ask("How do I book a cleaning?")
    answer = tab.wait_answers(1)

    assert tab.texts(tab.answers()) == [MODEL_REPLY]
    assert "Sophie" in tab.widget(".msg--greeting").inner_text()
    # The knowledge entry it was grounded in, as a link on this site.
    assert answer.locator(".msg__sources a").get_attribute("href") == (
        f"{fresh_site}/services/cleaning/"
    )
    assert tab.console_errors == []
