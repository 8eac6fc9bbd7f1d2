"""Agents, conversations and a listener on the staff group, for handoff tests."""

from __future__ import annotations

import asyncio
from typing import Any

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission

from sophie_chat.handoff import INBOX_GROUP
from sophie_chat.models import ChatSession

#: HANDOFF on, always open, the test timeout long enough not to fire by itself.
HANDOFF_ON = {
    "ENABLED": True,
    "TIMEZONE": None,
    "HOURS": {},
    "HOLIDAYS": [],
    "WAIT_TIMEOUT": 300,
    "NOTIFY": [],
    "AGENT_IDLE": 300,
}


def handoff_settings(**changes: Any) -> dict[str, Any]:
    return {**HANDOFF_ON, **changes}


@database_sync_to_async
def make_agent(username: str = "ana", *, permitted: bool = True, **fields: Any) -> Any:
    """A staff user, with ``sophie_chat.handle_conversation`` unless ``permitted`` is False."""
    user = get_user_model().objects.create_user(
        username=username, password="pw", is_staff=True, **fields
    )
    if permitted:
        user.user_permissions.add(
            Permission.objects.get(
                codename="handle_conversation", content_type__app_label="sophie_chat"
            )
        )
    # A fresh instance: the permission cache of the one above is stale.
    return get_user_model().objects.get(pk=user.pk)


@database_sync_to_async
def make_session(**fields: Any) -> ChatSession:
    return ChatSession.objects.create(**fields)


class Listener:
    """A channel in a channel-layer group, as a consumer would be."""

    def __init__(self, layer: Any, channel: str) -> None:
        self.layer = layer
        self.channel = channel

    @classmethod
    async def join(cls, group: str = INBOX_GROUP) -> Listener:
        layer = get_channel_layer()
        channel = await layer.new_channel()
        await layer.group_add(group, channel)
        return cls(layer, channel)

    async def next(self, timeout: float = 5) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            return await self.layer.receive(self.channel)

    async def until(self, predicate: Any, timeout: float = 5) -> dict[str, Any]:
        """The first event ``predicate`` accepts (earlier ones are dropped)."""
        async with asyncio.timeout(timeout):
            while True:
                event = await self.layer.receive(self.channel)
                if predicate(event):
                    return event
