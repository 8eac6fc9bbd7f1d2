"""A fresh site from the wheel, set up exactly as docs/quickstart.md says.

Builds the wheel, installs it with ``uvicorn[standard]`` into a new virtual
environment (dependencies from the package index), runs ``django-admin
startproject mysite``, applies the quickstart's steps to it, then checks,
migrates, loads the quickstart's knowledge file, serves it with uvicorn and
holds a chat turn with a real WebSocket client. The model is the fake OpenAI
server, reached through the SDK's own ``OPENAI_BASE_URL`` variable.

The snippets applied below are the quickstart's own text:
``test_quickstart_shows_the_snippets_this_test_applies`` keeps them in step.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import django
import pytest

from tests.support.chat_servers import ChatServer
from tests.support.network import free_port, http
from tests.support.openai_server import API_KEY, MODEL_REPLY, FakeOpenAIProcess
from tests.support.processes import ROOT, ServerProcess, child_env, run_command
from tests.support.quickstart import (
    ASGI_PY,
    INSTALLED_APPS_ADDITION,
    KNOWLEDGE_JSON,
    QUICKSTART,
    SETTINGS_ADDITION,
    URL_INCLUDE,
    WIDGET_TAGS,
    apply_quickstart,
)


@dataclass
class Site:
    """The ``mysite`` project in its own virtual environment."""

    venv: Path
    project: Path
    env: dict[str, str]

    @property
    def python(self) -> str:
        return str(self.venv / "bin" / "python")

    def manage(self, *args: str) -> str:
        return run_command([self.python, "manage.py", *args], cwd=self.project, env=self.env)


# -- the documentation --------------------------------------------------------------


def test_quickstart_shows_the_snippets_this_test_applies():
    quickstart = QUICKSTART.read_text()
    for snippet in (
        INSTALLED_APPS_ADDITION,
        SETTINGS_ADDITION,
        ASGI_PY,
        URL_INCLUDE,
        WIDGET_TAGS,
        KNOWLEDGE_JSON,
        "python manage.py migrate",
        "python manage.py populate_knowledge_base knowledge.json",
        "uvicorn mysite.asgi:application",
    ):
        assert snippet in quickstart, f"docs/quickstart.md no longer shows:\n{snippet}"


# -- the wheel ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel built from this source tree."""
    out = tmp_path_factory.mktemp("wheel")
    argv = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", str(out)]
    # With hatchling at hand no build environment needs downloading.
    if importlib.util.find_spec("hatchling") is not None:
        argv.append("--no-build-isolation")
    run_command([*argv, str(ROOT)], cwd=ROOT, env=child_env(), timeout=300)
    [built] = out.glob("sophie_chat-*.whl")
    return built


@pytest.mark.server
@pytest.mark.slow
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


# -- the site -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def site(
    wheel: Path, tmp_path_factory: pytest.TempPathFactory, fake_openai_process: FakeOpenAIProcess
) -> Site:
    """A new project with sophie-chat installed from the wheel, set up as the quickstart
    says, migrated and with the quickstart's knowledge file loaded."""
    work = tmp_path_factory.mktemp("fresh-site")
    venv = work / "venv"
    # No PYTHONPATH, no DJANGO_SETTINGS_MODULE: only what the venv holds is importable.
    env = child_env(OPENAI_API_KEY=API_KEY, OPENAI_BASE_URL=fake_openai_process.url)
    # This environment's pip installs into the new one (ensurepip would only add time).
    run_command([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=work, env=env)
    run_command(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(venv / "bin" / "python"),
            "install",
            "--quiet",
            str(wheel),
            # The Django this suite runs on, so each supported version gets a fresh site.
            f"Django=={django.__version__}",
            "uvicorn[standard]",
        ],
        cwd=work,
        env=env,
        timeout=600,
    )
    run_command([str(venv / "bin" / "django-admin"), "startproject", "mysite"], cwd=work, env=env)
    project = work / "mysite"
    apply_quickstart(project)
    built = Site(venv=venv, project=project, env=env)
    built.manage("migrate", "--noinput")
    built.manage("populate_knowledge_base", "knowledge.json")
    return built


@pytest.fixture(scope="module")
def site_server(site: Site) -> Iterator[ChatServer]:
    """``uvicorn mysite.asgi:application`` on a free port."""
    port = free_port()
    process = ServerProcess(
        "uvicorn (mysite from the wheel)",
        [
            str(site.venv / "bin" / "uvicorn"),
            "mysite.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env=site.env,
        cwd=site.project,
        log_path=site.project.parent / "uvicorn.log",
    )
    try:
        process.wait_until_healthy(f"http://127.0.0.1:{port}/chat/health/")
        yield ChatServer("uvicorn", "mysite", port, process)
    finally:
        process.stop()


@pytest.mark.server
@pytest.mark.slow
def test_system_checks_find_no_issues(site):
    assert site.manage("check").strip() == "System check identified no issues (0 silenced)."


@pytest.mark.server
@pytest.mark.slow
def test_site_uses_the_installed_wheel_and_finds_its_static_files(site):
    found = site.manage("findstatic", "--verbosity", "0", "sophie_chat/widget.js").strip()
    assert Path(found).is_relative_to(site.venv)


@pytest.mark.server
@pytest.mark.slow
def test_page_with_the_widget_tag_loads_the_widget_script(site_server):
    status, page = http("GET", f"{site_server.http_url}/")
    assert status == 200
    assert '<script type="module" src="/static/sophie_chat/widget.js"' in page
    assert '<sophie-chat data-ws-path="/ws/chat/"' in page


@pytest.mark.server
@pytest.mark.slow
async def test_chat_turn_is_answered_by_the_model_with_the_knowledge_base(
    site_server, open_chat, fake_openai
):
    client, welcome = await open_chat(site_server)
    assert welcome["type"] == "welcome"
    session = await client.start()
    assert session["type"] == "session"
    frames = await client.ask("How do I book a cleaning?", "first")
    end = frames[-1]
    assert end["type"] == "stream_end", frames
    assert "".join(f["delta"] for f in frames if f["type"] == "stream_delta") == MODEL_REPLY
    assert end["message"]["content"] == MODEL_REPLY
    assert end["message"]["metadata"]["sources"] == [
        {"title": "How do I book a cleaning?", "url": "/services/cleaning/"}
    ]
    [request] = fake_openai.chat_requests()
    assert "pick a date and confirm" in json.dumps(request["body"]["messages"][0])
