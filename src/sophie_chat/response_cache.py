"""The response cache: answers to standalone questions, shared between visitors.

Only a question that does not depend on the conversation so far (the first of
its session) and whose context holds nothing private is looked up or stored.
The key covers the normalized question, the locale, the knowledge version,
the public context (the page) and the model. A cache that fails is a miss,
never an error; failed, fallback and partial answers are never stored.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from django.core.cache import BaseCache, caches

from sophie_chat import async_cache, conf
from sophie_chat.context import ContextSection

logger = logging.getLogger(__name__)

KEY_PREFIX = "sophie_chat:answer:"


@dataclass(frozen=True, slots=True)
class CachedAnswer:
    content: str
    sources: list[dict[str, str]]
    model: str


def normalize_question(text: str) -> str:
    """Lowercase, accents and punctuation folded, spaces collapsed."""
    text = unicodedata.normalize("NFKD", text.casefold())
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return " ".join(re.sub(r"[^\w\s]", " ", text).split())


def is_cacheable(*, prior_user_messages: int, context: Sequence[ContextSection]) -> bool:
    return prior_user_messages == 0 and not any(section.private for section in context)


def cache_key(
    *,
    question: str,
    locale: str,
    knowledge_version: str,
    user_type: str,
    context: Sequence[ContextSection],
    model: str,
) -> str:
    public = [(s.title, sorted(s.facts.items())) for s in context if not s.private]
    material = json.dumps(
        [normalize_question(question), locale.lower(), knowledge_version, user_type, public, model],
        ensure_ascii=False,
        sort_keys=True,
    )
    return KEY_PREFIX + hashlib.sha256(material.encode()).hexdigest()


def _settings() -> dict[str, Any]:
    return conf.get("RESPONSE_CACHE")


def enabled() -> bool:
    return bool(_settings().get("ENABLED"))


def _cache() -> BaseCache:
    return caches[_settings().get("CACHE_ALIAS", "default")]


async def get(key: str) -> CachedAnswer | None:
    try:
        value = await async_cache.call(_cache(), "get", key)
    except Exception:
        logger.warning("Response cache read failed; treated as a miss", exc_info=True)
        return None
    if not isinstance(value, dict):
        return None
    try:
        return CachedAnswer(**value)
    except TypeError:
        return None


async def set(key: str, answer: CachedAnswer) -> None:
    try:
        timeout = _settings().get("TIMEOUT", 3600)
        await async_cache.call(_cache(), "set", key, asdict(answer), timeout)
    except Exception:
        logger.warning("Response cache write failed; answer not cached", exc_info=True)
