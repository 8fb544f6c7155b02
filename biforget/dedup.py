"""Deduplication: normalised exact match first, then near-duplicates by embedding cosine."""

from __future__ import annotations

from typing import Literal

import numpy as np

from biforget.text import normalise

Verdict = Literal["exact", "near"] | None


class Deduplicator:
    """Remembers accepted texts and their unit vectors; answers whether a new text repeats one.

    Vectors live in one growing matrix, so a check is a single matrix-vector product.
    """

    def __init__(self, threshold: float, dim: int | None = None) -> None:
        self.threshold = threshold
        self._keys: set[str] = set()
        self._matrix = np.zeros((0, dim or 0), dtype=np.float32)
        self._count = 0

    def __len__(self) -> int:
        return len(self._keys)

    def verdict(self, text: str, vector: np.ndarray | None = None) -> Verdict:
        if normalise(text) in self._keys:
            return "exact"
        if vector is not None and self._count:
            similarity = self._matrix[: self._count] @ vector.astype(np.float32)
            if float(similarity.max()) >= self.threshold:
                return "near"
        return None

    def add(self, text: str, vector: np.ndarray | None = None) -> None:
        self._keys.add(normalise(text))
        if vector is None:
            return
        vector = vector.astype(np.float32)
        if self._matrix.shape[1] != vector.shape[0]:
            if self._count:
                raise ValueError("embedding dimension changed between texts")
            self._matrix = np.zeros((16, vector.shape[0]), dtype=np.float32)
        if self._count == self._matrix.shape[0]:
            grown = np.zeros((max(16, 2 * self._count), self._matrix.shape[1]), dtype=np.float32)
            grown[: self._count] = self._matrix[: self._count]
            self._matrix = grown
        self._matrix[self._count] = vector
        self._count += 1

    def offer(self, text: str, vector: np.ndarray | None = None) -> Verdict:
        """Add the text unless it repeats an accepted one; return why it was refused, or None."""
        verdict = self.verdict(text, vector)
        if verdict is None:
            self.add(text, vector)
        return verdict
