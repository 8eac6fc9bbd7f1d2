"""The knowledge source contract.

A knowledge source answers :meth:`BaseKnowledgeSource.search` with the
entries most relevant to a visitor's question, best first. To add one, write
a subclass whose ``__init__`` takes keyword-only options and implement
:meth:`~BaseKnowledgeSource.search` and :meth:`~BaseKnowledgeSource.version`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from django.core.checks import CheckMessage


@dataclass(frozen=True, slots=True)
class KnowledgeHit:
    """One knowledge entry found for a question, with its relevance ``score``.

    ``score`` is comparable only between hits of the same search; higher is
    more relevant. ``coverage`` is the share of the question the entry
    matches (0 to 1, each word weighed by its rarity), and ``confident`` says
    whether the source judges the entry good enough to answer the question
    with, rather than merely related (see :func:`best_answer`). Sources that
    cannot judge leave both at their defaults: every hit is trusted.
    """

    id: str
    question: str
    answer: str
    score: float
    category: str = ""
    url: str = ""
    locale: str = ""
    coverage: float = 1.0
    confidence: float | None = None
    confident: bool = True

    def as_source(self) -> dict[str, str]:
        """The shape of an entry in an answer's ``metadata.sources``."""
        source = {"title": self.question}
        if self.url:
            source["url"] = self.url
        return source


class BaseKnowledgeSource:
    """Base class of knowledge sources."""

    async def search(
        self, query: str, *, locale: str | None = None, limit: int = 3
    ) -> list[KnowledgeHit]:
        """The entries most relevant to ``query``, best first, at most ``limit``.

        Entries in ``locale`` rank before others of similar relevance. An
        empty list means nothing relevant was found.
        """
        raise NotImplementedError

    async def version(self) -> str:
        """A string that changes whenever the knowledge changes.

        It is part of the response cache key, so an edited entry is never
        answered from a stale cached answer.
        """
        raise NotImplementedError

    def check(self, setting: str = "KNOWLEDGE") -> Sequence[CheckMessage]:
        """System check messages about this source's configuration."""
        return []
