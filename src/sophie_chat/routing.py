"""WebSocket routes: include ``websocket_urlpatterns`` in your ASGI ``URLRouter``.

``ws/chat/`` is the visitors' chat; ``ws/chat/inbox/`` is the staff inbox
(docs/protocol.md, "Staff inbox"), for agents only.
"""

from django.urls import path

from sophie_chat.consumers import ChatConsumer
from sophie_chat.inbox.consumers import InboxConsumer

websocket_urlpatterns = [
    path("ws/chat/", ChatConsumer.as_asgi(), name="sophie_chat_ws"),
    path("ws/chat/inbox/", InboxConsumer.as_asgi(), name="sophie_chat_inbox_ws"),
]
