"""The ownership matrix: who may resume, rate and close which conversation.

Conversations of an anonymous visitor (proved by its resume token) and of a
logged-in user (proved by the login) against every other kind of visitor:
another anonymous visitor, another user, staff, a tampered or expired token,
and adoption when a visitor logs in. Anything not theirs is
``session_not_found``, exactly as a conversation that does not exist.
"""

from __future__ import annotations

import uuid

import pytest

from sophie_chat.models import ChatMessage, ChatSession
from sophie_chat.security import make_resume_token
from tests.support.records import make_user

pytestmark = pytest.mark.django_db(transaction=True)

HOME = ("192.0.2.10", 5000)
ELSEWHERE = ("198.51.100.20", 6000)


@pytest.fixture
async def people():
    return {
        "owner": await make_user("owner"),
        "other": await make_user("other"),
        "staff": await make_user("staff", is_staff=True, is_superuser=True),
    }


async def anonymous_conversation(connect):
    client, _ = await connect(client=HOME)
    return await client.start()


async def user_conversation(connect, user):
    client, _ = await connect(user=user, client=HOME)
    return await client.start()


def tampered(token: str) -> str:
    return token[:-2] + ("AA" if not token.endswith("AA") else "BB")


ANONYMOUS_CASES = {
    # who (None: anonymous), where from, what they send -> resumed?
    "the same visitor with the token": (None, HOME, "token", True),
    "another anonymous visitor with the id only": (None, ELSEWHERE, "id", False),
    "another anonymous visitor with a tampered token": (None, ELSEWHERE, "tampered", False),
    "a token made for another conversation": (None, HOME, "other_token", False),
    "the id with another conversation's token": (None, HOME, "id+other_token", False),
    "a user with the id only": ("other", HOME, "id", False),
    "staff with the id only": ("staff", HOME, "id", False),
    "the visitor logging in (same address) adopts it": ("owner", HOME, "token", True),
    "a user elsewhere holding the token": ("other", ELSEWHERE, "token", False),
}


@pytest.mark.parametrize(
    ("who", "where", "proof", "resumed"), ANONYMOUS_CASES.values(), ids=ANONYMOUS_CASES.keys()
)
async def test_anonymous_conversation(connect, people, who, where, proof, resumed):
    first = await anonymous_conversation(connect)
    other_token = make_resume_token(str(uuid.uuid4()))
    fields = {
        "token": {"resume_token": first["resume_token"]},
        "id": {"session_id": first["session_id"]},
        "tampered": {"resume_token": tampered(first["resume_token"])},
        "other_token": {"resume_token": other_token},
        "id+other_token": {"session_id": first["session_id"], "resume_token": other_token},
    }[proof]
    client, _ = await connect(user=people[who] if who else None, client=where)
    reply = await client.start(**fields)
    if resumed:
        assert reply["type"] == "session"
        assert reply["session_id"] == first["session_id"]
    else:
        assert reply["code"] == "session_not_found"
        session = await ChatSession.objects.aget(pk=first["session_id"])
        assert session.user_id is None


USER_CASES = {
    "the owner by id": ("owner", "id", True),
    "the owner by token": ("owner", "token", True),
    "another user by id": ("other", "id", False),
    "another user with the token": ("other", "token", False),
    "staff by id": ("staff", "id", False),
    "an anonymous visitor with the token": (None, "token", False),
    "an anonymous visitor by id": (None, "id", False),
}


@pytest.mark.parametrize(("who", "proof", "resumed"), USER_CASES.values(), ids=USER_CASES.keys())
async def test_user_conversation(connect, people, who, proof, resumed):
    first = await user_conversation(connect, people["owner"])
    fields = {
        "id": {"session_id": first["session_id"]},
        "token": {"resume_token": first["resume_token"]},
    }[proof]
    client, _ = await connect(user=people[who] if who else None, client=HOME)
    reply = await client.start(**fields)
    if resumed:
        assert reply["session_id"] == first["session_id"]
    else:
        assert reply["code"] == "session_not_found"


async def test_feedback_on_another_conversations_message_is_refused(connect, dummy_llm):
    owner, _ = await connect(client=HOME)
    await owner.start()
    frames = await owner.ask("Anything?")
    answer_id = frames[-1]["message"]["id"]
    stranger, _ = await connect(client=ELSEWHERE)
    await stranger.start()
    await stranger.send({"type": "feedback", "message_id": answer_id, "rating": "down"})
    reply = await stranger.receive()
    assert reply["type"] == "error"
    assert reply["code"] in {"invalid_message", "session_not_found"}
    message = await ChatMessage.objects.aget(pk=answer_id)
    assert not await message.__class__.objects.filter(
        pk=answer_id, feedback__isnull=False
    ).aexists()
