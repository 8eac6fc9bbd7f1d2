"""Asking for a person in so many words, recognised without a model.

:func:`asks_for_a_person` matches what visitors type when they want a human
("talk to a human", "quero falar com um atendente", "hablar con un agente")
in English, Portuguese and Spanish, ignoring case and accents. A turn that
matches hands the conversation over at once, whatever the ``LLM`` backend:
the offline one cannot call tools, and a model need not be asked.
"""

from __future__ import annotations

import re
import unicodedata

_PATTERNS = [
    # English
    r"\b(talk|speak|chat)\s+(to|with)\s+(a|an|the|some|your)?\s*(real\s+|live\s+|actual\s+)?"
    r"(human|person|agent|operator|representative|rep|someone|somebody|staff|people)\b",
    r"\b(real|live|actual)\s+(human|person|agent)\b",
    r"\bhuman\s+(agent|being|support|please)\b",
    r"\b(connect|transfer)\s+me\s+(to|with)\s+(a|an|the)?\s*(human|person|agent|operator)\b",
    # Portuguese
    r"\b(falar|conversar|fala)\s+com\s+(um|uma|o|a|algum|alguma|alguem)?\s*"
    r"(atendente|pessoa|humano|humana|agente|operador|operadora|alguem|suporte|gente)\b",
    r"\batendimento\s+humano\b",
    r"\b(quero|preciso\s+de|chama|chame|chamar)\s+(um|uma|o|a)?\s*(atendente|humano|pessoa\s+real)\b",
    r"\bpessoa\s+de\s+verdade\b",
    # Spanish
    r"\b(hablar|comunicarme|conversar)\s+con\s+(un|una|el|la|alguien)?\s*"
    r"(agente|persona|humano|operador|operadora|representante|asesor|asesora|alguien)\b",
]
_MATCHERS = [re.compile(pattern) for pattern in _PATTERNS]


def _plain(text: str) -> str:
    """Lower case, without accents (``"alguém"`` -> ``"alguem"``)."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def asks_for_a_person(text: str) -> bool:
    """Whether ``text`` asks to talk to a person."""
    plain = _plain(text)
    return any(matcher.search(plain) for matcher in _MATCHERS)
