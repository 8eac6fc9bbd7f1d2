"""The ASGI application of every server under test.

Every configuration shares this stack (uvicorn, Channels' origin check and
auth middleware, URL routing); the consumer differs, Sophie at ``ws/chat/``,
the bare consumer at ``ws/bare/``, the naive one at ``ws/naive/``, and the
settings (:mod:`benchmarks.configurations`): the channel layer, the
database, the caches, ``SOPHIE_CHAT``.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.urls import path  # noqa: E402

from benchmarks.baselines import BareConsumer, NaiveConsumer  # noqa: E402
from sophie_chat.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(
                URLRouter(
                    [
                        *websocket_urlpatterns,
                        path("ws/bare/", BareConsumer.as_asgi()),
                        path("ws/naive/", NaiveConsumer.as_asgi()),
                    ]
                )
            )
        ),
    }
)
