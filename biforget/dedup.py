"""Deduplication: normalised exact match first, then near-duplicates by embedding cosine."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from biforget.text import normalise

Verdict = Literal["exact", "near"] | None


@dataclass(frozen=True)
class Offer:
    """What an offered text met: why it was refused (or None), and its highest cosine to the texts kept
    before it (None when none were kept or no vector was given; 1.0 for an exact repeat)."""

    verdict: Verdict
    nearest: float | None


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
        return self._judge(text, vector).verdict

    def nearest(self, vector: np.ndarray) -> float | None:
        """The highest cosine of a unit vector to every kept one; None while none is kept."""
        if not self._count:
            return None
        return float((self._matrix[: self._count] @ vector.astype(np.float32)).max())

    def _judge(self, text: str, vector: np.ndarray | None) -> Offer:
        if normalise(text) in self._keys:
            return Offer("exact", 1.0)
        nearest = self.nearest(vector) if vector is not None else None
        if nearest is not None and nearest >= self.threshold:
            return Offer("near", nearest)
        return Offer(None, nearest)

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
        return self.consider(text, vector).verdict

    def consider(self, text: str, vector: np.ndarray | None = None) -> Offer:
        """`offer`, also telling how close the text came to what was kept: one matrix product for both."""
        offer = self._judge(text, vector)
        if offer.verdict is None:
            self.add(text, vector)
        return offer
