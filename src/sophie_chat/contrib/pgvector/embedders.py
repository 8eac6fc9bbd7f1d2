"""Embedders: turn texts into vectors for semantic search.

An embedder is any object with a ``name`` (stored with each vector, so
vectors of different models are never compared) and
``embed(texts) -> list[list[float]]``. Nothing here downloads anything: the
default :class:`HashingEmbedder` needs no model at all, and a real model is
plugged in by dotted path (see ``docs/semantic-search.md``)::

    # mysite/embedders.py
    class MiniLM:
        name = "all-MiniLM-L6-v2"

        def __init__(self):
            from sentence_transformers import SentenceTransformer

            # A folder on disk: copy the model there when you deploy.
            self.model = SentenceTransformer("/srv/models/all-MiniLM-L6-v2",
                                             local_files_only=True)

        def embed(self, texts):
            return self.model.encode(list(texts), normalize_embeddings=True).tolist()
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from typing import Protocol

from sophie_chat.knowledge import text


class Embedder(Protocol):
    name: str

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One unit-length vector per text, all of the same size."""


class HashingEmbedder:
    """An offline embedder: hashed word stems and character trigrams, no model.

    Texts sharing stems or pieces of words end up close (so typos and word
    forms still meet), which makes it a fair stand-in for a real model in
    development and tests; it knows no synonyms.
    """

    def __init__(self, *, dimensions: int = 256) -> None:
        if isinstance(dimensions, bool) or not isinstance(dimensions, int) or dimensions < 16:
            raise ValueError(f"dimensions must be a whole number >= 16, not {dimensions!r}.")
        self.dimensions = dimensions
        self.name = f"hashing-{dimensions}"

    def _features(self, value: str) -> list[tuple[str, float]]:
        features: list[tuple[str, float]] = []
        for stem in text.terms(value):
            features.append((f"w:{stem}", 1.0))
            padded = f"^{stem}$"
            features.extend((f"c:{padded[i : i + 3]}", 0.3) for i in range(len(padded) - 2))
        return features

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        vectors = []
        for value in texts:
            vector = [0.0] * self.dimensions
            for feature, weight in self._features(value):
                digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
                number = int.from_bytes(digest, "little")
                sign = 1.0 if number & 1 else -1.0
                vector[(number >> 1) % self.dimensions] += sign * weight
            norm = math.sqrt(sum(x * x for x in vector)) or 1.0
            vectors.append([x / norm for x in vector])
        return vectors
