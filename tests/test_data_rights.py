"""A visitor's data rights: export and delete, by function, command and admin action."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from channels.db import database_sync_to_async
from django.contrib.auth.models import Permission
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.core.management import CommandError, call_command
from django.test import override_settings
from django.urls import reverse

from sophie_chat import data_rights
from sophie_chat.models import (
    ChatAnalytics,
    ChatErrorEvent,
    ChatMessage,
    ChatSession,
    MessageFeedback,
    UnansweredQuestion,
)
from sophie_chat.security import make_resume_token
from tests.support.records import conversation

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:sophie_chat_chatsession_changelist"


@pytest.fixture
def maria(django_user_model):
    return django_user_model.objects.create_user("maria", "maria@example.com")


@pytest.fixture
def joao(django_user_model):
    return django_user_model.objects.create_user("joao", "joao@example.com")


@pytest.fixture
def chats(maria, joao):
    """Two conversations of Maria, one of João, one anonymous."""
    return {
        "maria": [
            conversation(
                user=maria,
                turns=[{"question": "Maria 1", "rating": "down", "comment": "meh"}],
                client_ip="203.0.113.5",
            ),
            conversation(user=maria, turns=[{"question": "Maria 2"}], satisfaction_score=5),
        ],
        "joao": [conversation(user=joao, turns=[{"question": "João 1"}])],
        "anonymous": [conversation(turns=[{"question": "Anon 1"}])],
    }


def questions(export: dict) -> list[str]:
    return [
        m["content"] for c in export["conversations"] for m in c["messages"] if m["role"] == "user"
    ]


# -- the host's functions ------------------------------------------------------------


def test_export_user_data_has_all_of_their_conversations_and_nobody_elses(maria, chats):
    export = data_rights.export_user_data(maria)

    assert export["format"] == "sophie-chat-export"
    assert export["subject"] == {"user_id": maria.pk}
    assert questions(export) == ["Maria 1", "Maria 2"]


def test_export_is_plain_json_with_messages_feedback_and_satisfaction(maria, chats):
    export = json.loads(json.dumps(data_rights.export_user_data(maria)))

    first, second = export["conversations"]
    assert first["client_ip"] == "203.0.113.5"
    assert [m["role"] for m in first["messages"]] == ["user", "assistant"]
    assert first["messages"][1]["feedback"]["rating"] == "down"
    assert first["messages"][1]["feedback"]["comment"] == "meh"
    assert second["satisfaction"]["score"] == 5
    assert "cache_key" not in json.dumps(export)


def test_anonymous_user_cannot_export_by_user(chats):
    from django.contrib.auth.models import AnonymousUser

    with pytest.raises(PermissionDenied):
        data_rights.export_user_data(AnonymousUser())
    with pytest.raises(PermissionDenied):
        data_rights.delete_user_data(AnonymousUser())
    assert ChatSession.objects.count() == 4


def test_delete_user_data_deletes_only_their_conversations(maria, chats):
    deleted = data_rights.delete_user_data(maria)

    assert (deleted.conversations, deleted.messages) == (2, 4)
    assert sorted(ChatSession.objects.values_list("pk", flat=True)) == sorted(
        s.pk for s in chats["joao"] + chats["anonymous"]
    )
    assert MessageFeedback.objects.count() == 0


def test_export_then_delete_round_trip(maria, chats):
    before = data_rights.export_user_data(maria)
    data_rights.delete_user_data(maria)
    after = data_rights.export_user_data(maria)

    assert questions(before) == ["Maria 1", "Maria 2"]
    assert after["conversations"] == []
    assert questions(
        data_rights.export_visitor_data(make_resume_token(str(chats["anonymous"][0].pk)))
    ) == ["Anon 1"]


def test_resume_token_exports_and_deletes_only_its_conversation(chats):
    token = make_resume_token(str(chats["anonymous"][0].pk))

    assert questions(data_rights.export_visitor_data(token)) == ["Anon 1"]
    assert data_rights.delete_visitor_data(token).conversations == 1
    assert ChatSession.objects.count() == 3


def test_forged_resume_token_is_refused(chats):
    with pytest.raises(PermissionDenied):
        data_rights.export_visitor_data(make_resume_token(str(chats["anonymous"][0].pk)) + "x")
    with pytest.raises(PermissionDenied):
        data_rights.delete_visitor_data("not-a-token")
    assert ChatSession.objects.count() == 4


def test_resume_token_cannot_reach_a_conversation_a_user_owns(chats):
    token = make_resume_token(str(chats["joao"][0].pk))

    assert data_rights.export_visitor_data(token)["conversations"] == []
    assert data_rights.delete_visitor_data(token).conversations == 0
    assert ChatSession.objects.filter(pk=chats["joao"][0].pk).exists()


def test_deleting_removes_analytics_error_records_and_unanswered_questions_asked_there(maria):
    session = conversation(user=maria, turns=[{}])
    ChatAnalytics.objects.create(session=session, answers=1)
    ChatErrorEvent.objects.create(session=session, code="rate_limited")
    UnansweredQuestion.objects.create(
        key="x", question="Maria's own words", reason="no_match", last_session=session
    )
    other = UnansweredQuestion.objects.create(key="y", question="Someone else's", reason="no_match")

    data_rights.delete_user_data(maria)

    assert not ChatAnalytics.objects.exists()
    assert not ChatErrorEvent.objects.exists()
    assert list(UnansweredQuestion.objects.all()) == [other]


def test_deleting_removes_the_answers_the_conversation_put_in_the_cache(
    maria, django_capture_on_commit_callbacks
):
    conversation(user=maria, turns=[{"cache_key": "sophie_chat:answer:abc"}])
    cache.set("sophie_chat:answer:abc", {"content": "x"})
    cache.set("sophie_chat:answer:other", {"content": "y"})

    with django_capture_on_commit_callbacks(execute=True):
        deleted = data_rights.delete_user_data(maria)

    assert deleted.cached_answers == 1
    assert cache.get("sophie_chat:answer:abc") is None
    assert cache.get("sophie_chat:answer:other") is not None


@pytest.mark.django_db(transaction=True)
async def test_a_deleted_visitors_cached_answer_is_not_served_to_the_next_visitor(
    connect, dummy_llm
):
    dummy_llm.enqueue("Answer from the first visitor's turn.", "A fresh answer.")
    first, _ = await connect()
    session = await first.start()
    await first.ask("What are your opening hours?")
    await first.close()

    deleted = await database_sync_to_async(data_rights.delete_visitor_data)(session["resume_token"])

    assert deleted.cached_answers == 1
    second, _ = await connect(client=("198.51.100.9", 1))
    await second.start()
    end = (await second.ask("What are your opening hours?"))[-1]["message"]
    assert end["content"] == "A fresh answer."
    assert end["metadata"]["cached"] is False


@pytest.mark.django_db(transaction=True)
async def test_the_cache_key_an_answer_filled_never_reaches_the_client(connect, dummy_llm):
    dummy_llm.enqueue("Open 8 to 18.")
    client, _ = await connect()
    await client.start()
    frames = await client.ask("When are you open?")

    assert "cache_key" not in json.dumps(frames)
    stored = await database_sync_to_async(
        lambda: ChatMessage.objects.get(role="assistant").cache_key
    )()
    assert stored.startswith("sophie_chat:answer:")


# -- deleting a Django user -----------------------------------------------------------


def test_deleting_a_user_deletes_their_conversations_by_default(
    maria, chats, django_capture_on_commit_callbacks
):
    conversation(user=maria, turns=[{"cache_key": "sophie_chat:answer:m"}])
    cache.set("sophie_chat:answer:m", {"content": "x"})

    with django_capture_on_commit_callbacks(execute=True):
        maria.delete()

    assert ChatSession.objects.count() == 2
    assert cache.get("sophie_chat:answer:m") is None


def test_the_admins_user_delete_confirmation_lists_the_conversations_and_purges_nothing(
    admin_client, maria, chats, django_capture_on_commit_callbacks
):
    conversation(user=maria, turns=[{"cache_key": "sophie_chat:answer:m"}])
    cache.set("sophie_chat:answer:m", {"content": "x"})

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.get(reverse("admin:auth_user_delete", args=[maria.pk]))

    assert str(chats["maria"][0].pk) in response.content.decode()
    assert cache.get("sophie_chat:answer:m") is not None
    assert ChatSession.objects.filter(user=maria).count() == 3


@override_settings(
    SOPHIE_CHAT={
        "LLM": {"BACKEND": "sophie_chat.llm.dummy.DummyBackend"},
        "ON_USER_DELETE": "anonymize",
    }
)
def test_deleting_a_user_can_anonymize_their_conversations_instead(maria, chats):
    ChatSession.objects.filter(user=maria).update(context={"page": {"url": "/u/maria/"}})

    maria.delete()

    kept = ChatSession.objects.filter(pk__in=[s.pk for s in chats["maria"]])
    assert kept.count() == 2
    assert set(kept.values_list("user", "client_ip")) == {(None, None)}
    assert [s.context for s in kept] == [{}, {}]
    assert ChatMessage.objects.filter(session__in=kept).count() == 4


# -- management commands ---------------------------------------------------------------


def run(command: str, *args: str, **options) -> str:
    out = StringIO()
    call_command(command, *args, stdout=out, **options)
    return out.getvalue()


@pytest.mark.parametrize("who", ["maria", "maria@example.com", "MARIA@example.com"])
def test_export_command_finds_the_user_by_name_or_email(maria, chats, who):
    export = json.loads(run("export_chat_data", "--user", who))

    assert questions(export) == ["Maria 1", "Maria 2"]


def test_export_command_by_primary_key_and_to_a_file(maria, chats, tmp_path):
    target = tmp_path / "maria.json"

    run("export_chat_data", "--user", str(maria.pk), "--output", str(target))

    assert questions(json.loads(target.read_text(encoding="utf-8"))) == ["Maria 1", "Maria 2"]


def test_export_command_for_one_anonymous_conversation(chats):
    export = json.loads(run("export_chat_data", "--session", str(chats["anonymous"][0].pk)))

    assert questions(export) == ["Anon 1"]


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--user", "nobody"),
        ("--session", "not-a-uuid"),
        ("--session", "00000000-0000-0000-0000-000000000000"),
    ],
)
def test_commands_refuse_an_unknown_subject(chats, option, value):
    with pytest.raises(CommandError):
        run("export_chat_data", option, value)
    with pytest.raises(CommandError):
        run("delete_chat_data", option, value, interactive=False)


def test_delete_command_deletes_the_users_conversations(maria, chats):
    out = run("delete_chat_data", "--user", "maria", interactive=False)

    assert "Deleted 2 conversations (4 messages) and 0 cached answers." in out
    assert not ChatSession.objects.filter(user=maria).exists()
    assert ChatSession.objects.count() == 2


def test_delete_command_counts_one_conversation_in_the_singular(joao, chats, monkeypatch):
    prompts = []
    monkeypatch.setattr("builtins.input", lambda prompt: prompts.append(prompt) or "yes")

    out = run("delete_chat_data", "--user", "joao")

    assert prompts == ["Delete 1 conversation for good? Type 'yes' to continue: "]
    assert "Deleted 1 conversation (2 messages) and 0 cached answers." in out


def test_delete_command_asks_first_and_keeps_everything_without_yes(maria, chats, monkeypatch):
    monkeypatch.setattr("builtins.input", lambda prompt: "no")

    with pytest.raises(CommandError, match="Nothing deleted"):
        run("delete_chat_data", "--user", "maria")

    assert ChatSession.objects.count() == 4


# -- admin actions ---------------------------------------------------------------------


def post_action(client, action: str, sessions: list[ChatSession], **extra):
    return client.post(
        reverse(CHANGELIST),
        {"action": action, "_selected_action": [str(s.pk) for s in sessions], **extra},
    )


def test_admin_exports_selected_conversations(admin_client, chats):
    response = post_action(admin_client, "export_selected", chats["joao"])

    assert response["Content-Type"] == "application/json"
    assert "attachment;" in response["Content-Disposition"]
    assert questions(json.loads(response.content)) == ["João 1"]


def test_admin_exports_every_conversation_of_the_selected_visitors(admin_client, chats):
    response = post_action(admin_client, "export_visitors", chats["maria"][:1] + chats["anonymous"])

    assert sorted(questions(json.loads(response.content))) == ["Anon 1", "Maria 1", "Maria 2"]


def test_admin_delete_visitors_asks_for_confirmation_first(admin_client, chats):
    response = post_action(admin_client, "delete_visitors", chats["maria"][:1])

    assert response.status_code == 200
    assert "maria" in response.content.decode()
    assert ChatSession.objects.count() == 4


def test_admin_delete_visitors_deletes_every_conversation_of_the_user_once_confirmed(
    admin_client, chats
):
    response = post_action(admin_client, "delete_visitors", chats["maria"][:1], post="yes")

    assert response.status_code == 302
    assert ChatSession.objects.count() == 2
    assert not ChatSession.objects.filter(user__username="maria").exists()
    [message] = admin_client.get(response.url).context["messages"]
    assert str(message) == "Deleted 2 conversations (4 messages) and 0 cached answers."


def test_admin_delete_page_also_deletes_cached_answers(
    admin_client, maria, django_capture_on_commit_callbacks
):
    session = conversation(user=maria, turns=[{"cache_key": "sophie_chat:answer:k"}])
    cache.set("sophie_chat:answer:k", {"content": "x"})

    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(
            reverse("admin:sophie_chat_chatsession_delete", args=[session.pk]), {"post": "yes"}
        )

    assert not ChatSession.objects.exists()
    assert cache.get("sophie_chat:answer:k") is None


def test_staff_without_delete_permission_cannot_delete_visitors(client, django_user_model, chats):
    staff = django_user_model.objects.create_user("bia", is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_chatsession"))
    client.force_login(staff)

    post_action(client, "delete_visitors", chats["maria"][:1], post="yes")

    assert ChatSession.objects.count() == 4


def test_user_without_view_permission_cannot_export(client, django_user_model, chats):
    staff = django_user_model.objects.create_user("caio", is_staff=True)
    client.force_login(staff)

    response = post_action(client, "export_visitors", chats["maria"][:1])

    assert response.status_code == 403
