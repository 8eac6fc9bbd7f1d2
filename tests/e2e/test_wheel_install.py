"""A fresh site from the wheel, made by doing docs/quickstart.md's blocks and nothing else.

Builds the wheel with the quickstart's own ``pip wheel`` command, makes a
new virtual environment with this run's Python, and does the quickstart's
steps there (see :mod:`tests.support.quickstart`): sophie-chat from the
wheel with this run's Django, ``django-admin startproject mysite``, the
settings, ``asgi.py``, ``urls.py``, page and knowledge file written from the
page's blocks, ``migrate``, ``populate_knowledge_base``. Each server of step
7 (``runserver`` with daphne, uvicorn, daphne) then serves its own copy of
the project, as the quickstart says to start it, and a real WebSocket client
holds a chat turn answered by the model (the fake OpenAI server, reached
through ``OPENAI_BASE_URL`` as the quickstart says an OpenAI-compatible
server is). Last, the deployment page's WhiteNoise settings serve the
widget's files with ``DEBUG`` off.

tox runs these in the oldest (Python 3.11, Django 5.2) and the newest
(Python 3.13, Django 6.1) environments; tests/browser/test_fresh_site.py
builds both sites from one environment and uses them in Chromium.
"""

from __future__ import annotations

import json
import re
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import django
import pytest

from tests.support.network import http
from tests.support.openai_server import API_KEY, MODEL_REPLY, FakeOpenAIProcess
from tests.support.quickstart import (
    DEPLOYMENT,
    README,
    Edit,
    FreshSite,
    Quickstart,
    SiteServer,
    UnknownStep,
    build_wheel,
    edit_of,
    read_blocks,
)

pytestmark = [pytest.mark.server, pytest.mark.slow]

QUESTION = "What are your opening hours?"
SOURCES = [{"title": QUESTION, "url": "/#hours"}]
SERVERS = ("runserver", "uvicorn", "daphne")


# -- the documentation ------------------------------------------------------------------


def test_quickstart_has_the_steps_of_a_site_and_one_section_per_server():
    quickstart = Quickstart.read()
    written = [step.path for step in quickstart.setup if isinstance(step, Edit)]
    assert written == [
        "mysite/settings.py",
        "mysite/asgi.py",
        "mysite/urls.py",
        "templates/home.html",
        "knowledge.yaml",
    ]
    for kind in SERVERS:
        assert quickstart.server(kind)
    for alternative in quickstart.alternatives:
        compile(alternative.text, alternative.path, "exec")


def test_a_command_the_tests_cannot_perform_fails_them():
    site = object.__new__(FreshSite)
    with pytest.raises(UnknownStep, match="make coffee"):
        site.run("make coffee")


def test_a_step_outside_the_numbered_sections_fails_them(tmp_path):
    page = tmp_path / "quickstart.md"
    page.write_text("## Next\n\n```console\n$ python manage.py check\n```\n")
    with pytest.raises(UnknownStep, match="outside the numbered steps"):
        Quickstart.read(page)


def test_readme_shows_the_quickstarts_own_blocks():
    quickstart = Quickstart.read()
    files = {(e.path, e.how): e.text for e in quickstart.setup if isinstance(e, Edit)}
    commands = {*quickstart.install, *(s for s in quickstart.setup if isinstance(s, str))}
    for steps in quickstart.servers.values():
        commands.update(s for s in steps if isinstance(s, str))
    readme_files = 0
    for block in read_blocks(README):
        edit = edit_of(block)
        if edit is not None:
            readme_files += 1
            assert files.get((edit.path, edit.how)) == edit.text, f"README's {edit.path} differs"
        for command in block.commands:
            if block.heading == "Quickstart":
                assert command in commands, f"README says `{command}`; the quickstart does not"
    assert readme_files == len(files)


def test_readme_says_how_to_install_before_a_release_and_run_one_test_and_the_docs():
    readme = README.read_text()
    assert "pip install dist/sophie_chat-*.whl" in readme
    assert "make test-file FILE=" in readme
    assert "make docs" in readme


# -- the wheel ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_wheel(tmp_path_factory.mktemp("wheel"))


def test_wheel_holds_templates_static_files_migrations_and_translations(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in (
        "sophie_chat/templates/sophie_chat/widget.html",
        "sophie_chat/static/sophie_chat/widget.js",
        "sophie_chat/static/sophie_chat/widget.css",
        "sophie_chat/migrations/0001_initial.py",
        "sophie_chat/locale/pt_BR/LC_MESSAGES/django.mo",
        "sophie_chat/py.typed",
    ):
        assert name in names, f"{name} is missing from {wheel.name}"


# -- the site -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def site(
    wheel: Path, tmp_path_factory: pytest.TempPathFactory, fake_openai_process: FakeOpenAIProcess
) -> FreshSite:
    """Steps 1 to 6 of the quickstart, with this run's Python and Django."""
    quickstart = Quickstart.read()
    built = FreshSite(
        tmp_path_factory.mktemp("fresh-site"),
        python=sys.executable,
        wheel=wheel,
        pins=[f"Django=={django.__version__}"],
        env={"OPENAI_BASE_URL": fake_openai_process.url},
        exports={"OPENAI_API_KEY": API_KEY},
    )
    built.install(quickstart)
    built.do(quickstart.setup)
    return built


@pytest.fixture(scope="module", params=SERVERS)
def site_server(request: pytest.FixtureRequest, site: FreshSite) -> Iterator[SiteServer]:
    """The project served as step 7 says for one server, from a copy of its own."""
    server = site.copy(request.param).serve(Quickstart.read().server(request.param),
                                            name=request.param)
    yield server
    server.process.stop()


def test_system_checks_find_no_issues(site):
    assert site.manage("check").strip() == "System check identified no issues (0 silenced)."


def test_site_uses_the_installed_wheel_and_finds_its_static_files(site):
    found = site.manage("findstatic", "--verbosity", "0", "sophie_chat/widget.js").strip()
    assert Path(found).is_relative_to(site.venv)


def test_home_page_has_the_widget_and_its_script_is_served(site_server):
    status, page = http("GET", f"{site_server.url}/")
    assert status == 200
    assert '<section id="hours">' in page
    [script] = re.findall(r'<script type="module" src="([^"]+)"', page)
    assert script == "/static/sophie_chat/widget.js"
    assert '<sophie-chat data-ws-path="/ws/chat/"' in page
    status, source = http("GET", f"{site_server.url}{script}")
    assert status == 200
    assert "customElements.define" in source


def test_health_check_tells_a_stranger_only_ok(site_server):
    assert http("GET", f"{site_server.url}/chat/health/") == (200, {"status": "ok"})


async def test_chat_turn_is_answered_by_the_model_with_the_knowledge_base(
    site_server, open_chat, fake_openai
):
    client, welcome = await open_chat(site_server)
    assert welcome["type"] == "welcome"
    assert (await client.start())["type"] == "session"

    frames = await client.ask(QUESTION, "first")

    end = frames[-1]
    assert end["type"] == "stream_end", frames
    assert "".join(f["delta"] for f in frames if f["type"] == "stream_delta") == MODEL_REPLY
    assert end["message"]["metadata"]["sources"] == SOURCES
    [request] = fake_openai.chat_requests()
    assert "Monday to Friday, 9:00 to 18:00" in json.dumps(request["body"]["messages"][0])


# -- in production, without nginx: docs/deployment.md's WhiteNoise --------------------------


def whitenoise_steps() -> list[Edit | str]:
    """docs/deployment.md's "Without nginx: WhiteNoise" section: commands and settings."""
    steps: list[Edit | str] = []
    for block in read_blocks(DEPLOYMENT):
        if block.subheading != "Without nginx: WhiteNoise":
            continue
        edit = edit_of(block)
        steps.extend([edit] if edit is not None else block.commands)
    return steps


@pytest.fixture(scope="module")
def production_server(site: FreshSite) -> Iterator[SiteServer]:
    """A copy of the site with DEBUG off, its static files collected and served by WhiteNoise."""
    production = site.copy("production")
    settings = production.project / "mysite" / "settings.py"
    # What every production site sets (the deployment checklist), then the section's steps.
    settings.write_text(
        f'{settings.read_text()}\nDEBUG = False\nALLOWED_HOSTS = ["127.0.0.1"]\n'
    )
    # On 127.0.0.1 and a free port instead of 0.0.0.0:8000; the rest as written.
    started = production.serve(whitenoise_steps(), name="production")
    yield started
    started.process.stop()


def test_deployment_whitenoise_serves_the_widget_with_debug_off(production_server):
    status, page = http("GET", f"{production_server.url}/")
    assert status == 200
    [script] = re.findall(r'<script type="module" src="([^"]+)"', page)
    # Collected under a name with its content's hash, compressed beside it.
    assert re.fullmatch(r"/static/sophie_chat/widget\.[0-9a-f]{12}\.js", script), script
    status, source = http("GET", f"{production_server.url}{script}")
    assert status == 200
    assert "customElements.define" in source


async def test_deployment_whitenoise_site_answers(production_server, open_chat, fake_openai):
    client, _welcome = await open_chat(production_server)
    await client.start()
    frames = await client.ask(QUESTION)
    assert frames[-1]["type"] == "stream_end", frames
