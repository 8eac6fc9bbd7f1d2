"""sophie_chat.W017: nothing would serve the widget's static files."""

from __future__ import annotations

from channels.auth import AuthMiddlewareStack
from channels.routing import ProtocolTypeRouter, URLRouter
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.core.asgi import get_asgi_application
from django.test import override_settings

from sophie_chat.checks import check_static_files
from sophie_chat.routing import websocket_urlpatterns

# The quickstart's application, with and without its static files handler.
WITHOUT_STATIC_FILES = ProtocolTypeRouter(
    {
        "http": get_asgi_application(),
        "websocket": AuthMiddlewareStack(URLRouter(websocket_urlpatterns)),
    }
)
WITH_STATIC_FILES = ProtocolTypeRouter(
    {
        "http": ASGIStaticFilesHandler(get_asgi_application()),
        "websocket": AuthMiddlewareStack(URLRouter(websocket_urlpatterns)),
    }
)
# A plain Django application wrapped by the host's own middleware.


class Middleware:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        await self.app(scope, receive, send)


WRAPPED_STATIC_FILES = Middleware(ASGIStaticFilesHandler(get_asgi_application()))


def ids(**settings) -> list[str]:
    settings.setdefault("STATIC_ROOT", None)
    with override_settings(**settings):
        return [m.id for m in check_static_files()]


def test_w017_asgi_application_without_static_files_and_no_static_root():
    with override_settings(
        ASGI_APPLICATION="tests.test_checks_static.WITHOUT_STATIC_FILES", STATIC_ROOT=None
    ):
        [warning] = check_static_files()
    assert warning.id == "sophie_chat.W017"
    assert "/static/sophie_chat/widget.js" in warning.msg
    assert "ASGIStaticFilesHandler" in warning.hint
    assert "STATIC_ROOT" in warning.hint


def test_w017_staticfiles_not_installed(settings):
    apps = [a for a in settings.INSTALLED_APPS if a != "django.contrib.staticfiles"]
    with override_settings(INSTALLED_APPS=apps, STATIC_ROOT="/srv/static"):
        [warning] = check_static_files()
    assert warning.id == "sophie_chat.W017"
    assert "django.contrib.staticfiles" in warning.hint


def test_static_files_handler_in_the_asgi_application_is_enough():
    assert ids(ASGI_APPLICATION="tests.test_checks_static.WITH_STATIC_FILES") == []


def test_static_files_handler_under_other_middleware_is_found():
    assert ids(ASGI_APPLICATION="tests.test_checks_static.WRAPPED_STATIC_FILES") == []


def test_static_root_is_enough(tmp_path):
    assert (
        ids(
            ASGI_APPLICATION="tests.test_checks_static.WITHOUT_STATIC_FILES",
            STATIC_ROOT=str(tmp_path),
        )
        == []
    )


def test_whitenoise_middleware_is_enough(settings):
    middleware = [settings.MIDDLEWARE[0], "whitenoise.middleware.WhiteNoiseMiddleware"]
    assert (
        ids(
            ASGI_APPLICATION="tests.test_checks_static.WITHOUT_STATIC_FILES",
            MIDDLEWARE=[*middleware, *settings.MIDDLEWARE[1:]],
        )
        == []
    )


def test_an_asgi_application_that_cannot_be_imported_is_left_to_the_server():
    assert ids(ASGI_APPLICATION="tests.nowhere.application") == []
