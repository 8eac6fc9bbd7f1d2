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
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import django
import pytest

from tests.e2e.conftest import (
    MODEL_REPLY,
    OPENAI_API_KEY,
    ROOT,
    ChatServer,
    FakeOpenAI,
    ServerProcess,
    child_env,
    free_port,
    http,
    wait_until_healthy,
)

QUICKSTART = ROOT / "docs" / "quickstart.md"

# Step 2, settings: the apps to add to INSTALLED_APPS, then the new settings.
INSTALLED_APPS_ADDITION = """\
    "channels",
    "sophie_chat",
"""
SETTINGS_ADDITION = """\
ASGI_APPLICATION = "mysite.asgi.application"

SOPHIE_CHAT = {
    "LLM": {
        "BACKEND": "sophie_chat.llm.openai.OpenAIBackend",
        "OPTIONS": {"model": "gpt-4o-mini", "api_key": os.environ["OPENAI_API_KEY"]},
    },
}

# One process, for development. In production use Redis: see Deployment.
CHANNEL_LAYERS = {
    "default": {"BACKEND": "channels.layers.InMemoryChannelLayer"},
}
"""
# Step 3, the whole asgi.py.
ASGI_PY = """\
# mysite/asgi.py
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
# Set Django up before importing anything that uses models.
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from sophie_chat.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter({
    "http": django_asgi_app,
    "websocket": AllowedHostsOriginValidator(
        AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
    ),
})
"""
# Step 4, the URL include.
URL_INCLUDE = 'path("chat/", include("sophie_chat.urls")),'
# Step 5, the template tag.
WIDGET_TAGS = "{% load sophie_chat %}\n{% sophie_chat_widget %}"
# Step 6, the knowledge file.
KNOWLEDGE_JSON = """\
[
  {
    "question": "How do I book a cleaning?",
    "answer": "Choose Cleaning on the home page, pick a date and confirm.",
    "category": "booking",
    "keywords": ["book", "cleaning", "schedule"],
    "locale": "en",
    "url": "/services/cleaning/"
  }
]
"""

# The host's own page, which is not the quickstart's business.
HOME_HTML = f"""\
<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>My site</title></head>
<body>
<h1>My site</h1>
{WIDGET_TAGS}
</body>
</html>
"""


def substitute(path: Path, old: str, new: str) -> None:
    """Replace the one occurrence of ``old`` in ``path`` with ``new``."""
    text = path.read_text()
    assert text.count(old) == 1, f"{path.name} should contain {old!r} once:\n{text}"
    path.write_text(text.replace(old, new))


def apply_quickstart(project: Path) -> None:
    """Steps 2 to 6 of docs/quickstart.md, done to a fresh ``startproject`` folder."""
    package = project / project.name
    # Step 2: settings.
    settings = package / "settings.py"
    substitute(settings, "from pathlib import Path\n", "import os\nfrom pathlib import Path\n")
    substitute(
        settings,
        "'django.contrib.staticfiles',\n]",
        "'django.contrib.staticfiles',\n" + INSTALLED_APPS_ADDITION + "]",
    )
    settings.write_text(settings.read_text() + "\n" + SETTINGS_ADDITION)
    # Step 3: asgi.py.
    (package / "asgi.py").write_text(ASGI_PY)
    # Step 4: URLs.
    urls = package / "urls.py"
    substitute(
        urls,
        "from django.urls import path\n",
        "from django.urls import include, path\nfrom django.views.generic import TemplateView\n",
    )
    substitute(
        urls,
        "path('admin/', admin.site.urls),\n",
        "path('admin/', admin.site.urls),\n"
        f"    {URL_INCLUDE}\n"
        '    path("", TemplateView.as_view(template_name="home.html")),\n',
    )
    # Step 5: a page with the widget, from the project's templates folder.
    substitute(settings, "'DIRS': [],", "'DIRS': [BASE_DIR / 'templates'],")
    (project / "templates").mkdir()
    (project / "templates" / "home.html").write_text(HOME_HTML)
    # Step 6: database and knowledge.
    (project / "knowledge.json").write_text(KNOWLEDGE_JSON)


def run(argv: list[str], *, cwd: Path, env: dict[str, str], timeout: float = 120) -> str:
    """Run a command; its stdout, or the test fails with everything it printed."""
    result = subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert result.returncode == 0, (
        f"$ {' '.join(argv)}\nexit {result.returncode}\n{result.stdout}\n{result.stderr}"
    )
    return result.stdout


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
        return run([self.python, "manage.py", *args], cwd=self.project, env=self.env)


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
    run([*argv, str(ROOT)], cwd=ROOT, env=child_env(), timeout=300)
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
    wheel: Path, tmp_path_factory: pytest.TempPathFactory, fake_openai_process: FakeOpenAI
) -> Site:
    """A new project with sophie-chat installed from the wheel, set up as the quickstart
    says, migrated and with the quickstart's knowledge file loaded."""
    work = tmp_path_factory.mktemp("fresh-site")
    venv = work / "venv"
    # No PYTHONPATH, no DJANGO_SETTINGS_MODULE: only what the venv holds is importable.
    env = child_env(OPENAI_API_KEY=OPENAI_API_KEY, OPENAI_BASE_URL=fake_openai_process.url)
    # This environment's pip installs into the new one (ensurepip would only add time).
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=work, env=env)
    run(
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
    run([str(venv / "bin" / "django-admin"), "startproject", "mysite"], cwd=work, env=env)
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
        wait_until_healthy(process, f"http://127.0.0.1:{port}/chat/health/")
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
