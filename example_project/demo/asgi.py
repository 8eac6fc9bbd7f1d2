"""ASGI entry point: HTTP through Django, WebSockets through sophie-chat.

``manage.py runserver`` serves this (daphne is in INSTALLED_APPS), and so
does any ASGI server, e.g. ``uvicorn demo.asgi:application``: with
``DEBUG`` on it serves the static files too, as the quickstart's does.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo.settings")
# Set up Django (apps, settings) before anything imports models.
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402

from sophie_chat.routing import websocket_urlpatterns  # noqa: E402

if settings.DEBUG:
    # Static files for development, under any ASGI server (runserver does this itself).
    django_asgi_app = ASGIStaticFilesHandler(django_asgi_app)

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
    }
)
