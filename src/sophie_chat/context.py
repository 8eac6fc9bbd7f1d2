"""Context providers: what the assistant is told about the visitor and the page.

A provider is a function, sync or async, listed by dotted path in
``SOPHIE_CHAT["CONTEXT_PROVIDERS"]``. It receives a :class:`ContextRequest`
and returns a :class:`ContextSection` (or a plain mapping of facts, taken as
private), or ``None`` to add nothing::

    # myshop/chat.py
    from sophie_chat.context import ContextSection

    async def orders(request):
        if not request.user_id:
            return None
        count = await Order.objects.filter(user_id=request.user_id).acount()
        return ContextSection("orders", {"open orders": count}, private=True)

Facts are data for the model, never instructions: the prompt puts them in a
delimited section that it declares to be data. A section marked
``private`` (anything about a logged-in user) makes the answer uncacheable.
"""

from __future__ import annotations

import inspect
import logging
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from asgiref.sync import sync_to_async
from django.utils.module_loading import import_string

from sophie_chat import conf

logger = logging.getLogger(__name__)

MAX_FACT_LENGTH = 500
MAX_FACTS_PER_SECTION = 20
MAX_PAGE_URL_LENGTH = 300
MAX_PAGE_TITLE_LENGTH = 200
# Facts whose name says they hold a credential are dropped, whoever sent them.
SENSITIVE_FACT = re.compile(
    r"pass(word|wd)?|senha|secret|token|api[_ -]?key|cvv|card.?number|cart[aã]o|cpf|ssn",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class ContextRequest:
    """What providers know about the turn being answered."""

    user: Any
    user_id: int | None
    user_type: str
    session_id: str
    locale: str
    page: Mapping[str, Any]
    session_context: Mapping[str, Any]
    question: str


@dataclass(frozen=True, slots=True)
class ContextSection:
    """A titled group of facts. ``private`` facts are never shared between visitors."""

    title: str
    facts: Mapping[str, Any] = field(default_factory=dict)
    private: bool = True


def default_user_type(user: Any) -> str:
    """``"client"``, ``"provider"`` or ``"anonymous"`` for a user.

    Uses the user's ``user_type`` attribute when it is one of those, then an
    ``is_provider`` attribute; any other logged-in user is a client. Replace
    it with ``SOPHIE_CHAT["USER_TYPE_RESOLVER"]``.
    """
    if user is None or not getattr(user, "is_authenticated", False):
        return "anonymous"
    declared = getattr(user, "user_type", None)
    if declared in ("client", "provider"):
        return declared
    return "provider" if getattr(user, "is_provider", False) else "client"


async def resolve_user_type(user: Any) -> str:
    resolver = import_string(conf.get("USER_TYPE_RESOLVER"))
    if inspect.iscoroutinefunction(resolver):
        result = await resolver(user)
    elif resolver is default_user_type:
        result = resolver(user)  # reads attributes only: no thread hop
    else:
        result = await sync_to_async(resolver)(user)
    return result if result in ("client", "provider", "anonymous") else "client"


def user_context(request: ContextRequest) -> ContextSection:
    """Whether the visitor is logged in, their type and display name (nothing else)."""
    user = request.user
    if not request.user_id:
        return ContextSection("visitor", {"logged in": "no", "type": "anonymous"}, private=False)
    name = ""
    get_full_name = getattr(user, "get_full_name", None)
    if callable(get_full_name):
        name = get_full_name() or ""
    if not name:
        name = getattr(user, "first_name", "") or ""
    facts = {"logged in": "yes", "type": request.user_type}
    if name:
        facts["name"] = name
    return ContextSection("visitor", facts, private=True)


def clean_text(value: str, limit: int) -> str:
    """``value`` without control characters, whitespace collapsed, at most ``limit`` characters."""
    printable = "".join(ch if unicodedata.category(ch)[0] != "C" else " " for ch in str(value))
    text = " ".join(printable.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "\u2026"


def page_context(request: ContextRequest) -> ContextSection | None:
    """The page the widget is on: address (no query or fragment), title and language.

    Bounded (a 300-character address, a 200-character title) and cleaned of
    control characters; only http(s) addresses are kept.
    """
    page = request.page
    facts: dict[str, str] = {}
    url = page.get("page_url") or ""
    if isinstance(url, str) and url:
        try:
            parts = urlsplit(url.strip())
        except ValueError:
            parts = None
        if parts is not None and parts.scheme in ("http", "https") and parts.netloc:
            # The query string may carry tokens or personal data.
            address = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
            facts["url"] = clean_text(address, MAX_PAGE_URL_LENGTH)
    title = page.get("page_title")
    if isinstance(title, str) and clean_text(title, MAX_PAGE_TITLE_LENGTH):
        facts["title"] = clean_text(title, MAX_PAGE_TITLE_LENGTH)
    locale = page.get("locale")
    if isinstance(locale, str) and locale.strip():
        facts["language"] = clean_text(locale, 16)
    return ContextSection("page", facts, private=False) if facts else None


def session_context(request: ContextRequest) -> ContextSection | None:
    """The free ``extra`` facts the widget stored for this conversation."""
    extra = request.session_context.get("extra") or {}
    return ContextSection("conversation", extra, private=True) if extra else None


def _clean_facts(facts: Mapping[str, Any]) -> dict[str, str]:
    cleaned: dict[str, str] = {}
    for key, value in facts.items():
        if value is None or value == "" or SENSITIVE_FACT.search(str(key)):
            continue
        if len(cleaned) >= MAX_FACTS_PER_SECTION:
            break
        text = (
            value
            if isinstance(value, str)
            else repr(value)
            if not isinstance(value, int | float | bool)
            else str(value)
        )
        cleaned[clean_text(str(key), 80)] = clean_text(text, MAX_FACT_LENGTH)
    return cleaned


async def build_context(request: ContextRequest) -> list[ContextSection]:
    """Run every configured provider; a failing provider is logged and skipped."""
    sections: list[ContextSection] = []
    for path in conf.get("CONTEXT_PROVIDERS"):
        try:
            provider = import_string(path)
            if inspect.iscoroutinefunction(provider):
                result = await provider(request)
            elif getattr(provider, "__module__", "") == __name__:
                result = provider(request)  # built-ins touch no database
            else:
                result = await sync_to_async(provider)(request)
        except Exception:
            logger.exception("Context provider %s failed", path, extra={"provider": path})
            continue
        if result is None:
            continue
        if isinstance(result, Mapping):
            result = ContextSection(path.rsplit(".", 1)[-1], result, private=True)
        if not isinstance(result, ContextSection):
            logger.warning("Context provider %s returned %r; ignored", path, type(result))
            continue
        facts = _clean_facts(result.facts)
        if facts:
            sections.append(ContextSection(result.title, facts, result.private))
    return sections
