"""A staff agent in a process of its own: ``python -m tests.support.handoff_agent <command>``.

Run with a server topology's environment (``DJANGO_SETTINGS_MODULE`` and the
services), it calls :mod:`sophie_chat.handoff` as the inbox's process would,
so its state changes and messages reach the visitor through the shared
database and channel layer only. Commands, each printing a JSON result:

``claim SESSION USERNAME``, ``say SESSION USERNAME TEXT``, ``end SESSION USERNAME``
    on the conversation's open handoff (the agent is created, with the
    ``handle_conversation`` permission, if it does not exist).
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import django


def _agent(username: str) -> Any:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission

    user, created = get_user_model().objects.get_or_create(
        username=username, defaults={"first_name": username.title(), "is_staff": True}
    )
    if created:
        user.user_permissions.add(Permission.objects.get(codename="handle_conversation"))
    return get_user_model().objects.get(pk=user.pk)


def _handoff_id(session_id: str) -> int:
    from sophie_chat.models import Handoff

    return (
        Handoff.objects.filter(session_id=session_id)
        .order_by("-requested_at")
        .values_list("pk", flat=True)[0]
    )


async def _run(command: str, session_id: str, username: str, *rest: str) -> Any:
    from channels.db import database_sync_to_async

    from sophie_chat import handoff

    agent = await database_sync_to_async(_agent)(username)
    handoff_id = await database_sync_to_async(_handoff_id)(session_id)
    if command == "claim":
        return await handoff.claim(handoff_id, agent)
    if command == "say":
        await handoff.agent_typing(handoff_id, agent)
        message = await handoff.send_agent_message(handoff_id, agent, rest[0])
        return str(message.id)
    if command == "end":
        return await handoff.end(handoff_id, agent)
    raise SystemExit(f"unknown command {command!r}")


def main(argv: list[str]) -> None:
    django.setup()
    print(json.dumps(asyncio.run(_run(*argv))))


if __name__ == "__main__":
    main(sys.argv[1:])
