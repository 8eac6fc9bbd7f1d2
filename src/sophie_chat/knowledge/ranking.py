"""BM25F ranking in Python, shared by the built-in knowledge sources.

:class:`BM25Index` holds the postings of a set of :class:`Document` values and
scores a query against them; :class:`IndexedKnowledgeSource` is a knowledge
source that keeps such an index per process, rebuilds it when its
:meth:`~sophie_chat.knowledge.base.BaseKnowledgeSource.version` changes, and
turns scores into ranked :class:`~sophie_chat.knowledge.base.KnowledgeHit`
values (threshold, visitor's language first, priority as a tie-breaker, one
entry of a set of translations), each with its coverage of the question and
whether it is good enough to answer with.

Query words the index has never seen are matched to near spellings (one
typo away: a letter missing, extra, wrong or two letters swapped) and to
words sharing a long prefix ("faxineira" and "faxina"), at a discount, so a
typo still finds its entry but counts less than the word itself. Words that
frame a question more than they name its topic ("work", "funciona") count
half.
"""

from __future__ import annotations

import bisect
import logging
import math
import threading
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from asgiref.sync import sync_to_async

from sophie_chat.knowledge import text
from sophie_chat.knowledge.base import BaseKnowledgeSource, KnowledgeHit
from sophie_chat.knowledge.query import SearchQuery

logger = logging.getLogger(__name__)

# Field weights: a match in the question says most about what an entry is for.
FIELD_WEIGHTS = (3.0, 2.0, 1.0)
# BM25 parameters (the usual values).
K1 = 1.2
B = 0.75
# Words of the earlier questions a follow-up leans on count this much.
CONTEXT_WEIGHT = 0.75
# In coverage, a query word other entries have, but not this one, counts this
# share of its IDF.
ELSEWHERE_WEIGHT = 0.5
# In coverage, a query word no entry of a language has counts this share of the highest IDF,
# and this many times more when it is the complement of a word that has substance
# ("limpeza de piscina", "classes for kids": what kind of thing the question is about).
UNKNOWN_WORD_WEIGHT = 1.0
UNKNOWN_COMPLEMENT_WEIGHT = 2.0
# Entries that do not exist but contain none of the query's terms: they keep
# a term found in one entry of a tiny knowledge base from looking common.
BACKGROUND_DOCUMENTS = 10
# Whether a hit is good enough to answer with (see IndexedKnowledgeSource):
# chosen on the demo's evaluation set (docs/retrieval.md).
CONFIDENT_SCORE = 0.35
CONFIDENT_COVERAGE = 0.3
# Per point of priority, clamped to +-10 points: a tie-breaker, not a ranking.
PRIORITY_STEP = 0.01
PRIORITY_CLAMP = 10
# On top of the same-language boost, for an entry in exactly the visitor's locale.
EXACT_LOCALE_BONUS = 0.05
# How much a near match counts, relative to the word itself.
TYPO_WEIGHT = 0.7
PREFIX_WEIGHT = 0.5
# How much a synonym counts ("charge" for "cost": sophie_chat.knowledge.text.SYNONYMS).
SYNONYM_WEIGHT = 0.7
# Words shorter than this are never matched to near spellings: "gas" is one
# letter from far too many words.
MIN_TYPO_LENGTH = 4
# A shared prefix must be this long, and cover all but a few letters of both words.
MIN_PREFIX_LENGTH = 5
MAX_PREFIX_EXTRA = 4
_ALPHABET = "abcdefghijklmnopqrstuvwxyz"


def normalize_locale(locale: str | None) -> str:
    """``"pt_BR"``, ``"PT-br"`` -> ``"pt-br"``; ``None`` -> ``""``."""
    return (locale or "").strip().lower().replace("_", "-")


def language_of(locale: str | None) -> str:
    """The language part of a locale: ``"pt-br"`` -> ``"pt"``."""
    return normalize_locale(locale).split("-", 1)[0]


@dataclass(frozen=True, slots=True)
class Document:
    """One entry as a knowledge source gives it to :class:`BM25Index`."""

    id: str
    question: str
    answer: str
    keywords: tuple[str, ...] = ()
    category: str = ""
    url: str = ""
    locale: str = ""
    priority: int = 0

    def hit(
        self,
        score: float,
        *,
        coverage: float = 1.0,
        confidence: float | None = None,
        confident: bool = True,
    ) -> KnowledgeHit:
        return KnowledgeHit(
            id=self.id,
            question=self.question,
            answer=self.answer,
            score=round(score, 4),
            category=self.category,
            url=self.url,
            locale=self.locale,
            coverage=round(coverage, 4),
            confidence=None if confidence is None else round(confidence, 4),
            confident=confident,
        )


#: Words whose near terms a search remembers (per index; forgotten all at once when full).
NEAR_MEMO_SIZE = 10_000
#: Visitor locales whose score multipliers an index remembers (forgotten all at once when full).
MAX_FACTOR_SETS = 32


def _edits1(word: str) -> set[str]:
    """Every string one deletion, insertion, substitution or transposition from ``word``."""
    splits = [(word[:i], word[i:]) for i in range(len(word) + 1)]
    deletes = {a + b[1:] for a, b in splits if b}
    transposes = {a + b[1] + b[0] + b[2:] for a, b in splits if len(b) > 1}
    replaces = {a + c + b[1:] for a, b in splits if b for c in _ALPHABET if c != b[0]}
    inserts = {a + c + b for a, b in splits for c in _ALPHABET}
    return (deletes | transposes | replaces | inserts) - {word}


def _deletes(word: str) -> set[str]:
    """Every string one deletion from ``word``."""
    return {word[:i] + word[i + 1 :] for i in range(len(word))}


class BM25Index:
    """Postings of a set of documents, as of one version.

    Scores are BM25F over question, keywords and answer (weights 3, 2, 1). A
    term's rarity (IDF) is counted among the entries of the language of the
    entry it is found in, so a word that an entry and its translation share
    (a city, "Pix") is as rare as in one language, not twice as common.
    Everything that does not depend on the query is computed when the index
    is built, so a search only sums precomputed numbers.
    """

    def __init__(self, version: str, documents: Iterable[Document]) -> None:
        self.version = version
        self.documents: list[Document] = list(documents)
        #: The language of each document, by position.
        self.languages: list[str] = [language_of(doc.locale) for doc in self.documents]
        sizes = Counter(self.languages)
        field_terms = [
            (
                text.terms(doc.question),
                text.terms(" ".join(doc.keywords)),
                text.terms(doc.answer),
            )
            for doc in self.documents
        ]
        count = len(self.documents) or 1
        averages = [
            (sum(len(fields[f]) for fields in field_terms) / count) or 1.0 for f in range(3)
        ]
        saturated: dict[str, list[tuple[int, float]]] = defaultdict(list)
        #: The terms of each document, by position.
        self.document_terms: list[frozenset[str]] = []
        for position, fields in enumerate(field_terms):
            norms = [1 - B + B * len(fields[f]) / averages[f] for f in range(3)]
            counters = [Counter(terms) for terms in fields]
            present = frozenset().union(*counters)
            self.document_terms.append(present)
            for term in present:
                weighted = sum(
                    FIELD_WEIGHTS[f] * counters[f][term] / norms[f]
                    for f in range(3)
                    if counters[f][term]
                )
                saturated[term].append((position, weighted * (K1 + 1) / (K1 + weighted)))
        #: term -> {language: IDF among the documents in that language}
        self.idf: dict[str, dict[str, float]] = {}
        #: term -> [(document position, IDF x saturated field-weighted tf)]
        self.postings: dict[str, list[tuple[int, float]]] = {}
        for term, found in saturated.items():
            frequency = Counter(self.languages[position] for position, _ in found)
            idf = {lang: _idf(df, sizes[lang]) for lang, df in frequency.items()}
            self.idf[term] = idf
            self.postings[term] = [
                (position, idf[self.languages[position]] * value) for position, value in found
            ]
        #: The IDF of a word no document of a language has.
        self.unknown_idf: dict[str, float] = {lang: _idf(0, size) for lang, size in sizes.items()}
        # Folded words as written in the documents (for matching typos before
        # stemming), and one spelling of each with its accents (for engines
        # that do not fold accents, such as PostgreSQL's full-text search).
        self.words: dict[str, str] = {}
        self.spellings: dict[str, str] = {}
        for doc in self.documents:
            for field_text in (doc.question, " ".join(doc.keywords), doc.answer):
                for written in text.written_words(field_text):
                    word = text.fold(written)
                    if word in text.STOPWORDS:
                        continue
                    if written != word:
                        self.spellings.setdefault(word, written)
                    if len(word) >= MIN_TYPO_LENGTH:
                        self.words.setdefault(word, text.stem(word))
        self._sorted_terms = sorted(self.postings)
        #: Position of each document id.
        self.positions: dict[str, int] = {doc.id: i for i, doc in enumerate(self.documents)}
        #: Positions of the documents sharing each URL (an entry and its translations).
        self.by_url: dict[str, list[int]] = defaultdict(list)
        for position, doc in enumerate(self.documents):
            if doc.url:
                self.by_url[doc.url].append(position)
        self._near_memo: dict[str, dict[str, float]] = {}
        #: Each document's score multiplier, by the ranking's language settings
        #: (see :meth:`IndexedKnowledgeSource.rank`).
        self.factors: dict[tuple[Any, ...], list[float]] = {}

    def __len__(self) -> int:
        return len(self.documents)

    def document_frequency(self, term: str) -> int:
        """How many documents contain ``term`` (a stem, as :func:`text.terms` gives)."""
        return len(self.postings.get(term, ()))

    def _near_terms(self, word: str, term: str) -> dict[str, float]:
        """Index terms close to a word the index does not know, with their weights."""
        # Visitors ask the same words again and again; finding near terms is
        # most of a search's time. The index never changes, so neither do they.
        near = self._near_memo.get(word)
        if near is None:
            if len(self._near_memo) >= NEAR_MEMO_SIZE:
                self._near_memo.clear()
            near = self._near_memo[word] = self._find_near_terms(word, term)
        return near

    def _find_near_terms(self, word: str, term: str) -> dict[str, float]:
        near: dict[str, float] = {}
        if len(word) >= MIN_TYPO_LENGTH + 1:
            for candidate in _edits1(word):
                stem = self.words.get(candidate)
                if stem is not None and stem in self.postings:
                    near[stem] = TYPO_WEIGHT
        if len(term) >= MIN_TYPO_LENGTH:
            # A short stem only loses a letter ("used" -> "use"): one letter
            # changed in four is another word too often ("saun" -> "saud").
            candidates = _edits1(term) if len(term) > MIN_TYPO_LENGTH else _deletes(term)
            for candidate in candidates:
                if candidate in self.postings:
                    near.setdefault(candidate, TYPO_WEIGHT)
        if len(term) >= MIN_PREFIX_LENGTH:
            # Longer index terms that start with this one ("faxin" -> "faxineir").
            start = bisect.bisect_left(self._sorted_terms, term)
            for candidate in self._sorted_terms[start : start + 50]:
                if not candidate.startswith(term):
                    break
                if len(candidate) - len(term) <= MAX_PREFIX_EXTRA:
                    near.setdefault(candidate, PREFIX_WEIGHT)
            # Shorter index terms this one starts with ("faxineir" -> "faxin").
            for cut in range(max(MIN_PREFIX_LENGTH, len(term) - MAX_PREFIX_EXTRA), len(term)):
                if term[:cut] in self.postings:
                    near.setdefault(term[:cut], PREFIX_WEIGHT)
        return near

    def query_words(self, query: str, *, fuzzy: bool = True) -> list[QueryWord]:
        """The distinct words of ``query``, each with the index terms it stands for.

        A word the index has is itself (weight 1); an unknown one its near
        spellings (:data:`TYPO_WEIGHT`, :data:`PREFIX_WEIGHT`), or nothing;
        either also stands for its synonyms the index has (:data:`SYNONYM_WEIGHT`).
        For a :class:`~sophie_chat.knowledge.query.SearchQuery`, words that
        only its context has come last, marked as context.
        """
        found: dict[str, QueryWord] = {}
        parts = [(query, False)]
        if isinstance(query, SearchQuery) and query.context:
            parts = [(query.question, False), *((part, True) for part in query.context)]
        for part, context in parts:
            previous = ""
            complement = False
            for word in text.words(part):
                if word in text.STOPWORDS:
                    # "limpeza de piscina", "exercise for back pain": what follows
                    # "de"/"of"/"for" after a word of substance names what kind.
                    if word in text.COMPLEMENT_WORDS and previous:
                        complement = True
                    previous = previous if complement else ""
                    continue
                specific, complement = complement, False
                previous = word
                term = text.stem(word)
                if term in found:
                    continue
                if term in self.postings:
                    matches = {term: 1.0}
                elif fuzzy:
                    matches = dict(self._near_terms(word, term))
                else:
                    matches = {}
                for synonym in text.SYNONYMS.get(term, ()):
                    if synonym in self.postings:
                        matches[synonym] = max(matches.get(synonym, 0.0), SYNONYM_WEIGHT)
                weight = CONTEXT_WEIGHT if context else 1.0
                if term in text.LIGHT_TERMS:
                    weight *= text.LIGHT_WEIGHT
                found[term] = QueryWord(
                    matches,
                    weight=weight,
                    context=context,
                    number=word.isdigit(),
                    specific=specific,
                )
        return list(found.values())

    def query_terms(self, query: str, *, fuzzy: bool = True) -> dict[str, float]:
        """The index terms a query looks for, each with the weight its matches count with."""
        wanted: dict[str, float] = {}
        for word in self.query_words(query, fuzzy=fuzzy):
            for term, weight in word.matches.items():
                weight *= word.weight
                wanted[term] = max(wanted.get(term, 0.0), weight)
        return wanted

    def score(self, wanted: dict[str, float]) -> dict[int, float]:
        """BM25F score of every document sharing a term with the query, by position."""
        scores: dict[int, float] = defaultdict(float)
        for term, weight in wanted.items():
            for position, value in self.postings.get(term, ()):
                scores[position] += weight * value
        return scores

    def score_words(self, words: Sequence[QueryWord]) -> dict[int, float]:
        """BM25F score of every document matching a query word, by position.

        ``words`` is :meth:`query_words`. Each word counts once per document,
        with the best of the terms it stands for there (the word itself, a
        near spelling, a synonym): a word with many synonyms is no more
        relevant than a word with one. Two words standing for the same term
        count it once, at the higher weight.
        """
        best: dict[str, float] = {}
        for word in words:
            for term, weight in word.matches.items():
                best[term] = max(best.get(term, 0.0), weight * word.weight)
        scores: dict[int, float] = defaultdict(float)
        for word in words:
            found: dict[int, float] = {}
            for term, weight in word.matches.items():
                if best.get(term) != weight * word.weight:
                    continue  # another word claims the term at a higher weight
                best[term] = -1.0  # claimed: counted once
                for position, value in self.postings.get(term, ()):
                    value *= weight * word.weight
                    if value > found.get(position, 0.0):
                        found[position] = value
            for position, value in found.items():
                scores[position] += value
        return scores

    def strength(self, position: int, relevance: float) -> float:
        """``relevance`` in units of the IDF of a word no document of the language has.

        About 1 for a rare word matched once in a question, whatever the size
        of the knowledge base; BM25 scores themselves grow with it.
        """
        unknown = self.unknown_idf.get(self.languages[position], 0.0)
        return relevance / unknown if unknown else 0.0

    def coverage(self, position: int, words: Sequence[QueryWord]) -> float:
        """How much of the query a document matches, from 0 to 1, each word by its rarity.

        ``words`` is :meth:`query_words`. A word counts with its IDF in the
        document's language; one that no document of that language has
        counts :data:`UNKNOWN_WORD_WEIGHT` of the highest IDF: either it is
        what the question is about and the knowledge base does not know it,
        or it is filler the stopwords miss. A near spelling matches at its
        discount. A context word counts only when the document has it, as
        support: the earlier question cannot make up for what the new one
        asks and the document lacks.
        """
        language = self.languages[position]
        terms = self.document_terms[position]
        total = matched = 0.0
        for word in words:
            rarities = [
                (term, weight, idf[language])
                for term, weight in word.matches.items()
                if language in (idf := self.idf[term])
            ]
            found = max(
                (weight * rarity for term, weight, rarity in rarities if term in terms),
                default=0.0,
            )
            if word.context:
                found *= word.weight
                total += found
                matched += found
                continue
            if not rarities:
                if word.number:
                    continue  # "my 15 year old son": a number says little unless an entry has it
                importance = self.unknown_idf.get(language, 0.0) * UNKNOWN_WORD_WEIGHT
                if word.specific:
                    # "limpeza de piscina": the kind of thing asked about is unknown.
                    importance *= UNKNOWN_COMPLEMENT_WEIGHT
            elif found:
                importance = max(rarity for _term, _weight, rarity in rarities)
            else:
                # Known to the knowledge base, found elsewhere: the question
                # spans topics it covers ("cancel my cleaning appointment").
                importance = max(r for _t, _w, r in rarities) * ELSEWHERE_WEIGHT
            total += importance * word.weight
            matched += min(importance, found) * word.weight
        return matched / total if total else 0.0


@dataclass(frozen=True, slots=True)
class QueryWord:
    """One word of a query: the index terms it stands for, with their weights."""

    matches: dict[str, float]
    #: How much the word counts: less for a context word (:data:`CONTEXT_WEIGHT`)
    #: and a word that frames questions (:data:`~sophie_chat.knowledge.text.LIGHT_WEIGHT`).
    weight: float = 1.0
    #: A word of the earlier questions only (:class:`~sophie_chat.knowledge.query.SearchQuery`).
    context: bool = False
    #: Digits only ("15", "2024").
    number: bool = False
    #: The complement of a word of substance ("piscina" in "limpeza de piscina").
    specific: bool = False


def _idf(df: int, size: int) -> float:
    """BM25's IDF of a term in ``df`` of ``size`` documents, plus the background ones."""
    n = size + BACKGROUND_DOCUMENTS
    return math.log(1 + (n - df + 0.5) / (df + 0.5))


def _check_number(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError(f"{name} must be a number >= 0, not {value!r}.")
    return float(value)


class IndexedKnowledgeSource(BaseKnowledgeSource):
    """A knowledge source ranked by a per-process :class:`BM25Index`.

    Subclasses implement :meth:`version` and :meth:`load_documents` (called
    in a worker thread, so it may use the ORM or the file system). The index
    is built on the first search and rebuilt only when :meth:`version`
    changes.

    Options:
        min_score: entries less relevant than this are not returned, so a
            question the knowledge base knows nothing about gets ``[]``
            (default 2.0). A word matched only in a long answer scores about
            2 to 3, a word of the question about 4 to 6.
        locale_boost: added to the score multiplier of entries in the
            visitor's language (``"pt"``, ``"pt-br"`` and ``"pt_BR"`` are all
            Portuguese), so they rank before entries in other languages of
            similar relevance (default 0.5: x1.5; 0 ranks by relevance alone).
        fuzzy: match words the knowledge base does not contain to near
            spellings and shared prefixes, at a discount (default True).
        confident_score: the absolute margin of the judgement whether a hit
            is good enough to answer with (:attr:`KnowledgeHit.confident`):
            its confidence, the relevance in units of one rare word matched
            (the IDF of a word no entry has, so it means the same for 20
            entries as for 5,000) times its coverage, must reach this
            (default 0.35).
        confident_coverage: the relative margin: the share of the question
            the hit matches, each word weighed by its rarity, must reach this
            (default 0.4, from 0 to 1).
    """

    def __init__(
        self,
        *,
        min_score: float = 2.0,
        locale_boost: float = 0.5,
        fuzzy: bool = True,
        confident_score: float = CONFIDENT_SCORE,
        confident_coverage: float = CONFIDENT_COVERAGE,
    ) -> None:
        self.min_score = _check_number("min_score", min_score)
        self.locale_boost = _check_number("locale_boost", locale_boost)
        self.confident_score = _check_number("confident_score", confident_score)
        self.confident_coverage = _check_number("confident_coverage", confident_coverage)
        if self.confident_coverage > 1:
            raise ValueError(
                f"confident_coverage must be a share from 0 to 1, not {confident_coverage!r}."
            )
        if not isinstance(fuzzy, bool):
            raise ValueError(f"fuzzy must be True or False, not {fuzzy!r}.")
        self.fuzzy = fuzzy
        self._index: BM25Index | None = None
        # Serializes rebuilds so concurrent searches after an edit load once.
        self._lock = threading.Lock()

    def load_documents(self) -> Iterable[Document]:
        """Every searchable entry, as of now. Runs in a worker thread."""
        raise NotImplementedError

    async def search(
        self, query: str, *, locale: str | None = None, limit: int = 3
    ) -> list[KnowledgeHit]:
        """The entries most relevant to ``query``: :meth:`score`, then :meth:`rank`.

        Subclasses change what counts as relevant by overriding :meth:`score`,
        not this method.
        """
        if limit <= 0 or not text.terms(query):
            return []
        index = await self.current_index()
        scores = await self.score(index, query, limit=limit)
        return self.rank(index, scores, locale=locale, limit=limit, query=query)

    async def score(self, index: BM25Index, query: str, *, limit: int) -> dict[int, float]:
        """The relevance of the entries to ``query``, by position in ``index``.

        The scoring hook: BM25F here. A subclass that has more evidence (the
        database's full-text rank, embedding similarity) adds it to
        ``await super().score(...)``, off the event loop for anything that
        blocks (:meth:`in_worker_thread`). ``limit`` is how many hits the
        search returns, for sources that fetch candidates. Entries missing
        from the result are not relevant at all.
        """
        return index.score_words(index.query_words(query, fuzzy=self.fuzzy))

    def rank(
        self,
        index: BM25Index,
        scores: dict[int, float],
        *,
        locale: str | None,
        limit: int,
        query: str = "",
    ) -> list[KnowledgeHit]:
        """Hits for relevance ``scores`` (by document position), best first.

        Entries under ``min_score`` are left out; the visitor's language and
        the entries' priority multiply the rest. Entries sharing a URL in
        other languages are translations: only the best of them is listed,
        in the visitor's language when it has one. Each hit says how much of
        ``query`` it covers and whether it is :attr:`~KnowledgeHit.confident`.
        """
        language = language_of(locale)
        exact = normalize_locale(locale)
        factors = self._factors(index, language, exact)
        documents = index.documents
        minimum = self.min_score
        ranked = [
            (score * factors[position], documents[position].priority, documents[position], position)
            for position, score in scores.items()
            if score >= minimum
        ]
        ranked.sort(key=lambda item: (-item[0], -item[1], item[2].question, item[2].id))
        words = index.query_words(query, fuzzy=self.fuzzy) if query else []
        hits: list[KnowledgeHit] = []
        shown: dict[str, str] = {}
        for adjusted, _priority, doc, position in ranked:
            if len(hits) >= limit:
                break
            shown_position = position
            if doc.url:
                if doc.url in shown:
                    if shown[doc.url] != index.languages[position]:
                        continue  # a translation of an entry listed already
                else:
                    shown_position = self._translation(index, scores, position, language, exact)
                    shown[doc.url] = index.languages[shown_position]
            coverage = index.coverage(position, words) if words else 1.0
            confidence = index.strength(position, scores[position]) * coverage
            hits.append(
                index.documents[shown_position].hit(
                    adjusted,
                    coverage=coverage,
                    confidence=confidence,
                    confident=confidence >= self.confident_score
                    and coverage >= self.confident_coverage,
                )
            )
        return hits

    def _factors(self, index: BM25Index, language: str, exact: str) -> list[float]:
        """Every document's score multiplier for a visitor's locale, computed once per index."""
        key = (language, exact, self.locale_boost)
        factors = index.factors.get(key)
        if factors is None:
            if len(index.factors) >= MAX_FACTOR_SETS:
                index.factors.clear()  # visitors' locales are few; this bounds odd ones
            factors = [self._factor(doc, language, exact) for doc in index.documents]
            index.factors[key] = factors
        return factors

    def _factor(self, doc: Document, language: str, exact: str) -> float:
        factor = 1.0
        if language and language_of(doc.locale) == language:
            factor += self.locale_boost
            if normalize_locale(doc.locale) == exact:
                factor += EXACT_LOCALE_BONUS
        priority = max(-PRIORITY_CLAMP, min(PRIORITY_CLAMP, doc.priority))
        return factor + PRIORITY_STEP * priority

    @staticmethod
    def _translation(
        index: BM25Index, scores: dict[int, float], position: int, language: str, exact: str
    ) -> int:
        """The entry to show for the best-ranked one of its URL: its translation, if needed."""
        if not language or index.languages[position] == language:
            return position
        url = index.documents[position].url
        own = [p for p in index.by_url[url] if index.languages[p] == language]
        if not own:
            return position
        if len(own) > 1:
            # Several entries share the URL in the visitor's language: only one
            # that matched the question too is known to be the same topic.
            matched = [p for p in own if scores.get(p, 0.0) > 0]
            if not matched:
                return position
            own = matched
        return max(
            own,
            key=lambda p: (
                normalize_locale(index.documents[p].locale) == exact,
                scores.get(p, 0.0),
            ),
        )

    async def current_index(self) -> BM25Index:
        """The index as of the current :meth:`version` (rebuilt if it changed)."""
        version = await self.version()
        index = self._index
        if index is not None and index.version == version:
            return index
        return await self.in_worker_thread(self._rebuild, version)

    async def in_worker_thread(self, func: Callable[..., Any], *args: Any) -> Any:
        """``func(*args)`` off the event loop, where :meth:`load_documents` may block.

        Asgiref's thread by default; :class:`DatabaseKnowledgeSource` uses
        Sophie's database threads, which give their connections back.
        """
        return await sync_to_async(func)(*args)

    def _rebuild(self, version: str) -> BM25Index:
        with self._lock:
            index = self._index
            # Another search rebuilt it while this one waited for the lock.
            if index is not None and index.version == version:
                return index
            # Documents are read after the version: a change in between makes
            # the index newer than its version, which costs one extra rebuild,
            # never staleness.
            index = BM25Index(version, self.load_documents())
            self.index_built(index)
            self._index = index
        logger.debug(
            "Knowledge index rebuilt",
            extra={"knowledge_version": version, "entries": len(index), "source": type(self)},
        )
        return index

    def index_built(self, index: BM25Index) -> None:
        """Called in the worker thread after each rebuild (a hook for subclasses)."""


def merge_scores(*parts: dict[int, float]) -> dict[int, float]:
    """Sum score dicts by position."""
    merged: dict[int, float] = defaultdict(float)
    for part in parts:
        for position, score in part.items():
            merged[position] += score
    return merged
