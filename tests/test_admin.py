from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from django.urls import reverse
from django.utils import timezone

from sophie_chat.knowledge.database import DatabaseKnowledgeSource
from sophie_chat.models import (
    ChatAnalytics,
    ChatMessage,
    ChatSession,
    KnowledgeBaseEntry,
    MessageFeedback,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def conversation(django_user_model):
    user = django_user_model.objects.create_user("maria", "maria@example.com")
    session = ChatSession.objects.create(user=user, user_type="client", locale="pt-br")
    start = timezone.now()
    ChatMessage.objects.create(
        session=session, role="user", content="Quanto custa uma faxina?", created_at=start
    )
    answer = ChatMessage.objects.create(
        session=session,
        role="assistant",
        content="A faxina padrão começa em R$ 150.",
        created_at=start + timedelta(seconds=2),
        first_token_ms=310,
        total_ms=1200,
        metadata={"model": "dummy", "sources": [{"title": "Quanto custa uma faxina?"}]},
    )
    MessageFeedback.objects.create(message=answer, rating="up", comment="Ajudou!")
    ChatAnalytics.objects.create(session=session, user_messages=1, answers=1)
    return session


@pytest.fixture
def entry():
    return KnowledgeBaseEntry.objects.create(
        question="Como cancelar um agendamento?",
        answer="Abra Meus agendamentos e toque em Cancelar.",
        category="booking",
        keywords=["cancelamento", "desistência"],
        locale="pt-br",
        url="/help/cancellation/",
    )


def changelist(model):
    return reverse(f"admin:sophie_chat_{model._meta.model_name}_changelist")


def change(obj):
    return reverse(f"admin:sophie_chat_{obj._meta.model_name}_change", args=[obj.pk])


@pytest.mark.parametrize(
    "model", [ChatSession, ChatMessage, KnowledgeBaseEntry, MessageFeedback, ChatAnalytics]
)
def test_changelist_loads(admin_client, conversation, entry, model):
    assert admin_client.get(changelist(model)).status_code == 200


def test_conversation_list_shows_message_count(admin_client, conversation):
    response = admin_client.get(changelist(ChatSession))

    assert response.context["cl"].result_list[0].message_count == 2


def test_conversation_page_shows_transcript_oldest_first(admin_client, conversation):
    response = admin_client.get(change(conversation))

    body = response.content.decode()
    assert response.status_code == 200
    question = body.index("Quanto custa uma faxina?")
    answer = body.index("A faxina padrão começa em R$ 150.")
    assert question < answer
    assert "1200" in body


def test_conversation_page_has_no_save_button(admin_client, conversation):
    body = admin_client.get(change(conversation)).content.decode()

    assert 'name="_save"' not in body


def test_conversation_cannot_be_added(admin_client):
    url = reverse("admin:sophie_chat_chatsession_add")

    assert admin_client.get(url).status_code == 403
    assert admin_client.post(url, {"status": "active"}).status_code == 403
    assert ChatSession.objects.count() == 0


def test_conversation_cannot_be_changed(admin_client, conversation):
    admin_client.post(change(conversation), {"status": "closed", "locale": "en"})

    conversation.refresh_from_db()
    assert (conversation.status, conversation.locale) == ("active", "pt-br")


def test_conversation_can_be_deleted(admin_client, conversation):
    url = reverse("admin:sophie_chat_chatsession_delete", args=[conversation.pk])

    response = admin_client.post(url, {"post": "yes"})

    assert response.status_code == 302
    assert not ChatSession.objects.exists()
    assert not ChatMessage.objects.exists()


@pytest.mark.parametrize("term", ["faxina", "maria", "maria@example.com"])
def test_conversation_search_finds_by_content_and_user(admin_client, conversation, term):
    response = admin_client.get(changelist(ChatSession), {"q": term})

    assert [s.pk for s in response.context["cl"].result_list] == [conversation.pk]


def test_conversation_search_finds_by_id(admin_client, conversation):
    ChatSession.objects.create()

    response = admin_client.get(changelist(ChatSession), {"q": str(conversation.pk)})

    assert [s.pk for s in response.context["cl"].result_list] == [conversation.pk]


def test_conversation_search_by_content_keeps_message_count(admin_client, conversation):
    response = admin_client.get(changelist(ChatSession), {"q": "faxina"})

    assert response.context["cl"].result_list[0].message_count == 2


def test_conversation_search_without_match_is_empty(admin_client, conversation):
    response = admin_client.get(changelist(ChatSession), {"q": "encanador"})

    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == []


@pytest.mark.parametrize(
    "query", [{"status__exact": "active"}, {"user_type__exact": "client"}, {"locale": "pt-br"}]
)
def test_conversation_filters_load(admin_client, conversation, query):
    response = admin_client.get(changelist(ChatSession), query)

    assert [s.pk for s in response.context["cl"].result_list] == [conversation.pk]


def test_message_search_and_filters(admin_client, conversation):
    response = admin_client.get(changelist(ChatMessage), {"q": "faxina", "role__exact": "user"})

    assert [m.content for m in response.context["cl"].result_list] == ["Quanto custa uma faxina?"]


def test_message_search_by_conversation_id(admin_client, conversation):
    response = admin_client.get(changelist(ChatMessage), {"q": str(conversation.pk)})

    assert len(response.context["cl"].result_list) == 2


def test_message_cannot_be_changed(admin_client, conversation):
    message = conversation.messages.first()

    admin_client.post(change(message), {"content": "edited", "role": "user"})

    message.refresh_from_db()
    assert message.content == "Quanto custa uma faxina?"


def test_feedback_filter_by_rating(admin_client, conversation):
    up = admin_client.get(changelist(MessageFeedback), {"rating__exact": "up"})
    down = admin_client.get(changelist(MessageFeedback), {"rating__exact": "down"})

    assert len(up.context["cl"].result_list) == 1
    assert len(down.context["cl"].result_list) == 0


@pytest.mark.parametrize("model", [MessageFeedback, ChatAnalytics, ChatMessage])
def test_records_cannot_be_added(admin_client, model):
    url = reverse(f"admin:sophie_chat_{model._meta.model_name}_add")

    assert admin_client.get(url).status_code == 403


def test_feedback_and_analytics_pages_load(admin_client, conversation):
    feedback = MessageFeedback.objects.get()

    assert admin_client.get(change(feedback)).status_code == 200
    assert admin_client.get(change(conversation.analytics)).status_code == 200


def test_knowledge_entry_can_be_edited(admin_client, entry):
    response = admin_client.post(
        change(entry),
        {
            "question": entry.question,
            "answer": "Toque em Cancelar em Meus agendamentos.",
            "locale": "pt-br",
            "category": "booking",
            "keywords": '["cancelamento"]',
            "url": "/help/cancellation/",
            "active": "on",
            "priority": "4",
        },
    )

    assert response.status_code == 302
    entry.refresh_from_db()
    assert (entry.answer, entry.keywords, entry.priority) == (
        "Toque em Cancelar em Meus agendamentos.",
        ["cancelamento"],
        4,
    )


def test_knowledge_entry_can_be_added(admin_client):
    url = reverse("admin:sophie_chat_knowledgebaseentry_add")

    response = admin_client.post(
        url,
        {
            "question": "Do you work on Sundays?",
            "answer": "Yes.",
            "locale": "en",
            "keywords": "[]",
            "priority": "0",
            "active": "on",
        },
    )

    assert response.status_code == 302
    assert KnowledgeBaseEntry.objects.get().question == "Do you work on Sundays?"


def test_knowledge_list_edits_active_and_priority(admin_client, entry):
    response = admin_client.post(
        changelist(KnowledgeBaseEntry),
        {
            "form-TOTAL_FORMS": "1",
            "form-INITIAL_FORMS": "1",
            "form-0-id": str(entry.pk),
            "form-0-priority": "7",
            "_save": "Save",
        },
    )

    assert response.status_code == 302
    entry.refresh_from_db()
    assert (entry.active, entry.priority) == (False, 7)


@pytest.mark.parametrize("term", ["agendamento", "Cancelar", "desistência", "cancelamento"])
def test_knowledge_search_covers_question_answer_and_keywords(admin_client, entry, term):
    KnowledgeBaseEntry.objects.create(question="Other?", answer="Other.", keywords=["outro"])

    response = admin_client.get(changelist(KnowledgeBaseEntry), {"q": term})

    assert [e.pk for e in response.context["cl"].result_list] == [entry.pk]


@pytest.mark.parametrize(
    "query", [{"active__exact": "1"}, {"locale": "pt-br"}, {"category": "booking"}]
)
def test_knowledge_filters(admin_client, entry, query):
    KnowledgeBaseEntry.objects.create(
        question="Other?", answer="Other.", active=False, category="other"
    )

    response = admin_client.get(changelist(KnowledgeBaseEntry), query)

    assert [e.pk for e in response.context["cl"].result_list] == [entry.pk]


def test_deactivate_action_hides_entry_from_search(admin_client, entry):
    source = DatabaseKnowledgeSource()
    assert async_to_sync(source.search)("cancelar")

    admin_client.post(
        changelist(KnowledgeBaseEntry),
        {"action": "deactivate", "_selected_action": [entry.pk]},
    )

    entry.refresh_from_db()
    assert entry.active is False
    assert async_to_sync(source.search)("cancelar") == []


def test_activate_action(admin_client, entry):
    KnowledgeBaseEntry.objects.filter(pk=entry.pk).update(active=False)

    admin_client.post(
        changelist(KnowledgeBaseEntry), {"action": "activate", "_selected_action": [entry.pk]}
    )

    entry.refresh_from_db()
    assert entry.active is True


# -- issue 16, finding 5: actions need the change permission and leave a log entry ----


@pytest.fixture
def viewer_client(client, django_user_model):
    """A staff member who may only view knowledge entries and unanswered questions."""
    from django.contrib.auth.models import Permission

    user = django_user_model.objects.create_user("vera", password="x", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(
            codename__in=["view_knowledgebaseentry", "view_unansweredquestion"]
        )
    )
    client.force_login(user)
    return client


@pytest.fixture
def question():
    from sophie_chat.models import UnansweredQuestion

    return UnansweredQuestion.objects.create(
        question="Do you clean ovens?", key="do you clean ovens", locale="en", reason="no_entry"
    )


@pytest.mark.parametrize("action", ["activate", "deactivate"])
def test_knowledge_actions_need_the_change_permission(viewer_client, entry, action):
    KnowledgeBaseEntry.objects.filter(pk=entry.pk).update(active=action == "deactivate")
    response = viewer_client.post(
        changelist(KnowledgeBaseEntry), {"action": action, "_selected_action": [entry.pk]}
    )
    entry.refresh_from_db()
    assert entry.active is (action == "deactivate")  # unchanged
    assert response.status_code in (200, 302, 403)


def test_mark_resolved_needs_the_change_permission(viewer_client, question):
    from sophie_chat.models import UnansweredQuestion

    viewer_client.post(
        changelist(UnansweredQuestion),
        {"action": "mark_resolved", "_selected_action": [question.pk]},
    )
    question.refresh_from_db()
    assert question.resolved is False


def test_knowledge_action_logs_one_change_entry_per_object(admin_client, entry):
    from django.contrib.admin.models import CHANGE, LogEntry

    admin_client.post(
        changelist(KnowledgeBaseEntry), {"action": "deactivate", "_selected_action": [entry.pk]}
    )
    logged = LogEntry.objects.filter(object_id=str(entry.pk), action_flag=CHANGE)
    assert logged.count() == 1
    assert "active" in logged.get().get_change_message().lower()


def test_mark_resolved_logs_one_change_entry_per_object(admin_client, question):
    from django.contrib.admin.models import CHANGE, LogEntry

    from sophie_chat.models import UnansweredQuestion

    admin_client.post(
        changelist(UnansweredQuestion),
        {"action": "mark_resolved", "_selected_action": [question.pk]},
    )
    assert LogEntry.objects.filter(object_id=str(question.pk), action_flag=CHANGE).count() == 1
