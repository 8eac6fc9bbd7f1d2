"""Context providers: built-ins, host providers sync and async, failures."""

import pytest
from django.contrib.auth.models import AnonymousUser, User

from sophie_chat.context import (
    ContextRequest,
    ContextSection,
    build_context,
    default_user_type,
    resolve_user_type,
)


def request_for(user=None, page=None, session_context=None):
    user = user or AnonymousUser()
    return ContextRequest(
        user=user,
        user_id=user.pk if user.is_authenticated else None,
        user_type=default_user_type(user),
        session_id="s",
        locale="en",
        page=page or {},
        session_context=session_context or {},
        question="q",
    )


async def test_anonymous_visitor_context_is_public():
    sections = await build_context(request_for())
    assert sections == [
        ContextSection("visitor", {"logged in": "no", "type": "anonymous"}, private=False)
    ]


async def test_logged_in_user_context_has_name_and_type_and_is_private():
    user = User(pk=5, username="ana", first_name="Ana", last_name="Souza", password="secret")
    [visitor] = await build_context(request_for(user))
    assert visitor.private
    assert visitor.facts == {"logged in": "yes", "type": "client", "name": "Ana Souza"}
    assert "secret" not in str(visitor.facts)


async def test_page_context_drops_query_strings_and_other_schemes():
    sections = await build_context(
        request_for(page={"page_url": "https://shop.test/book?token=abc#x", "page_title": "Book"})
    )
    page = next(s for s in sections if s.title == "page")
    assert page.facts == {"url": "https://shop.test/book", "title": "Book"}
    sections = await build_context(request_for(page={"page_url": "javascript:alert(1)"}))
    assert not any(s.title == "page" for s in sections)


def host_sync_provider(request):
    return {"upcoming booking": "Plumbing on 2026-12-01"}


async def host_async_provider(request):
    return ContextSection("plan", {"tier": "gold"}, private=False)


def host_broken_provider(request):
    raise RuntimeError("boom")


async def test_host_providers_sync_and_async_are_merged_and_failures_skipped(settings):
    settings.SOPHIE_CHAT = {
        **settings.SOPHIE_CHAT,
        "CONTEXT_PROVIDERS": [
            "tests.test_context.host_sync_provider",
            "tests.test_context.host_broken_provider",
            "tests.test_context.host_async_provider",
        ],
    }
    sections = await build_context(request_for())
    assert [(s.title, dict(s.facts), s.private) for s in sections] == [
        ("host_sync_provider", {"upcoming booking": "Plumbing on 2026-12-01"}, True),
        ("plan", {"tier": "gold"}, False),
    ]


@pytest.mark.parametrize(
    ("attrs", "expected"),
    [
        ({}, "client"),
        ({"user_type": "provider"}, "provider"),
        ({"is_provider": True}, "provider"),
    ],
)
async def test_default_user_type_resolution(attrs, expected):
    user = User(pk=1, username="u")
    for key, value in attrs.items():
        setattr(user, key, value)
    assert await resolve_user_type(user) == expected
    assert await resolve_user_type(AnonymousUser()) == "anonymous"


def always_provider(user):
    return "provider"


async def test_user_type_resolver_can_be_replaced(settings):
    settings.SOPHIE_CHAT = {
        **settings.SOPHIE_CHAT,
        "USER_TYPE_RESOLVER": "tests.test_context.always_provider",
    }
    assert await resolve_user_type(User(pk=1)) == "provider"
