"""A brand-new site made only from the quickstart's blocks works in Chromium, on the oldest
and the newest supported Python and Django, under each server the quickstart shows.

For each combination (Python 3.11 with Django 5.2, Python 3.13 with Django
6.1) a virtual environment is made with that Python, and the quickstart's
steps are done in it exactly as written (:mod:`tests.support.quickstart`):
sophie-chat from the wheel, ``startproject``, the settings, ``asgi.py``,
``urls.py``, page and knowledge file from the page's blocks, ``migrate`` and
``populate_knowledge_base``. Then each server of step 7 serves a copy of the
project as the quickstart starts it (``runserver`` with daphne, uvicorn,
daphne), and Chromium opens the home page: the widget's script loads, the
visitor asks the knowledge file's question and gets the model's answer with
its source, a link to the page's section. Default settings everywhere: no
CSP, no ``LocaleMiddleware``, no theming. The model is the fake OpenAI
server, reached through ``OPENAI_BASE_URL`` as the quickstart says.

The interpreters are found on PATH or in pyenv's folders (CI has every
supported Python); without one, the combination skips, and fails under
``CI=true``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.openai_server import API_KEY, MODEL_REPLY, FakeOpenAIProcess
from tests.support.quickstart import (
    FreshSite,
    Quickstart,
    SiteServer,
    build_wheel,
    find_python,
)
from tests.support.services import skip_unless_ci

pytestmark = [pytest.mark.browser, pytest.mark.server, pytest.mark.slow]

#: The oldest and the newest supported Python and Django (pyproject.toml).
COMBINATIONS = {
    "python3.11-django5.2": ("3.11", "Django>=5.2,<6.0"),
    "python3.13-django6.1": ("3.13", "Django>=6.1,<6.2"),
}
SERVERS = ("runserver", "uvicorn", "daphne")
QUESTION = "What are your opening hours?"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_wheel(tmp_path_factory.mktemp("wheel"))


@pytest.fixture(scope="module", params=list(COMBINATIONS))
def site(
    request: pytest.FixtureRequest,
    wheel: Path,
    fake_openai_process: FakeOpenAIProcess,
    tmp_path_factory: pytest.TempPathFactory,
) -> FreshSite:
    """Steps 1 to 6 of the quickstart, with one combination's Python and Django."""
    version, django = COMBINATIONS[request.param]
    python = find_python(version)
    if python is None:
        skip_unless_ci(f"needs Python {version} (on PATH, in pyenv or /usr/bin)")
    quickstart = Quickstart.read()
    built = FreshSite(
        tmp_path_factory.mktemp(request.param),
        python=python,
        wheel=wheel,
        pins=[django],
        env={"OPENAI_BASE_URL": fake_openai_process.url},
        exports={"OPENAI_API_KEY": API_KEY},
    )
    built.install(quickstart)
    built.do(quickstart.setup)
    return built


@pytest.fixture(scope="module", params=SERVERS)
def served(request: pytest.FixtureRequest, site: FreshSite) -> Iterator[SiteServer]:
    """The site served as step 7 says for one server, from a copy of its own."""
    server = site.copy(request.param).serve(
        Quickstart.read().server(request.param), name=request.param
    )
    yield server
    server.process.stop()


def test_fresh_site_shows_the_widget_and_gets_an_answer(served, fake_openai, open_tab):
    tab = open_tab(f"{served.url}/")
    assert tab.page.evaluate("() => customElements.get('sophie-chat') !== undefined")
    tab.open()

    tab.ask(QUESTION)
    answer = tab.wait_answers(1)

    assert tab.texts(tab.answers()) == [MODEL_REPLY]
    assert "Sophie" in tab.widget(".msg--greeting").inner_text()
    # The knowledge entry it was grounded in: a link to the page's own section.
    assert answer.locator(".msg__sources a").get_attribute("href") == f"{served.url}/#hours"
    [request] = fake_openai.chat_requests()
    assert "Monday to Friday" in str(request["body"]["messages"][0])
    assert tab.console_errors == []
