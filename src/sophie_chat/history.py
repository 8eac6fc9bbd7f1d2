"""A conversation's earlier messages, as the prompt is built from them.

:mod:`sophie_chat.store` reads them from the database and
:mod:`sophie_chat.prompts` turns them into prompt messages; neither owns the
other's types, so the value they share lives here.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class HistoryItem:
    """One earlier message: ``role`` is ``"user"``, ``"assistant"`` or ``"agent"``."""

    role: str
    content: str
