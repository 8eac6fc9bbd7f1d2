"""WebSocket routes: include ``websocket_urlpatterns`` in your ASGI ``URLRouter``."""

from django.urls import path

from sophie_chat.consumers import ChatConsumer

websocket_urlpatterns = [
    path("ws/chat/", ChatConsumer.as_asgi(), name="sophie_chat_ws"),
]
