"""The quickstart's steps, as text and as edits to a fresh ``startproject`` folder.

Every snippet here is docs/quickstart.md's own text
(``tests/e2e/test_wheel_install.py`` checks that the page still shows each
one); :func:`apply_quickstart` applies them. Used by the wheel install test
and by the browser test of a fresh site.
"""

from __future__ import annotations

from pathlib import Path

from tests.support.processes import ROOT

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
