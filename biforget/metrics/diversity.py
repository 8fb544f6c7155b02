"""Remote-clique diversity: the mean pairwise cosine distance of a set's embeddings; and novelty, the
share of recent samples that were not close to anything kept before them (Stage I's default stop).

For unit vectors x_1..x_n with sum s, sum_{i != j} x_i . x_j = |s|^2 - n, so the mean pairwise cosine
similarity is (|s|^2 - n) / (n (n - 1)). Keeping s lets a growing set update its diversity in O(d) per
sample, where the upstream scripts recomputed all pairs after every sample.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np


def _unit(vectors: np.ndarray) -> np.ndarray:
    matrix = np.asarray(vectors, dtype=np.float64)
    norms = np.linalg.norm(matrix, axis=-1, keepdims=True)
    return matrix / np.where(norms == 0, 1.0, norms)


def mean_pairwise_cosine_distance(vectors: np.ndarray) -> float | None:
    """Exact remote-clique diversity of a set; None for fewer than two vectors."""
    matrix = _unit(np.atleast_2d(vectors))
    n = matrix.shape[0]
    if n < 2:
        return None
    total = matrix.sum(axis=0)
    squared_norms = float((matrix * matrix).sum())  # n, except for zero vectors
    mean_similarity = (float(total @ total) - squared_norms) / (n * (n - 1))
    return 1.0 - mean_similarity


@dataclass
class DiversityTracker:
    """Running remote-clique diversity with the paper's stopping rule (`--stop diversity`).

    Every `check_every` accepted samples the diversity is compared with its value at the previous
    check; when the gain is below `epsilon` the curve has flattened and synthesis may stop. That works
    when samples arrive point by point (the original scripts), so the mean rises as new points come in;
    on a stream interleaved over all points from the start it has no trend to flatten, and the change
    between checks is noise (docs/stopping.md).
    """

    check_every: int = 100
    epsilon: float = 0.001
    count: int = 0
    _sum: np.ndarray | None = field(default=None, repr=False)
    last_check: float | None = None
    curve: list[tuple[int, float]] = field(default_factory=list)
    converged: bool = False

    @property
    def diversity(self) -> float | None:
        if self.count < 2 or self._sum is None:
            return None
        mean_similarity = (float(self._sum @ self._sum) - self.count) / (self.count * (self.count - 1))
        return 1.0 - mean_similarity

    def add(self, vector: np.ndarray) -> bool:
        """Add one sample's embedding; True when this sample completed a check that found convergence."""
        unit = _unit(vector)
        self._sum = unit.copy() if self._sum is None else self._sum + unit
        self.count += 1
        if self.count % self.check_every:
            return False
        value = self.diversity
        if value is None:
            return False
        self.curve.append((self.count, value))
        if self.last_check is not None and value - self.last_check < self.epsilon:
            self.converged = True
        self.last_check = value
        return self.converged


# Rows per block of the blocked remote-clique: a 1024 x 1024 float64 block is 8 MiB, whatever n is.
BLOCK_SIZE = 1024


def remote_clique(vectors: np.ndarray, block_size: int = BLOCK_SIZE) -> float | None:
    """Exact remote-clique diversity, the mean of 1 - cos(x_i, x_j) over all pairs i < j.

    The pairs are summed block by block from matrix products of row blocks, so memory stays at two
    blocks and one block x block product however large the set; unlike the running-sum identity above,
    each pair's distance is formed on its own, which is what scipy's `pdist(X, "cosine")` averages.
    None for fewer than two vectors.
    """
    if block_size < 1:
        raise ValueError("block_size must be at least 1")
    matrix = np.atleast_2d(np.asarray(vectors))
    n = matrix.shape[0]
    if n < 2:
        return None
    total = 0.0
    for start in range(0, n, block_size):
        rows = _unit(matrix[start : start + block_size])
        for other in range(start, n, block_size):
            columns = rows if other == start else _unit(matrix[other : other + block_size])
            distances = 1.0 - rows @ columns.T
            if other == start:
                # Each unordered pair once: the strict upper triangle of a diagonal block.
                total += float(np.triu(distances, k=1).sum())
            else:
                total += float(distances.sum())
    return total / (n * (n - 1) / 2)


@dataclass
class NoveltyTracker:
    """The novelty stopping rule: the share of recent offers that said something new.

    An offer is every sample that reached deduplication, kept or refused as a (near) repeat; it is new
    when its highest cosine to everything kept before it is below `threshold`. The rate is taken over
    the last `window` offers; once that many were made, a rate below `min_novelty` means the model has
    mostly stopped saying new things. Unlike a mean over all pairs, this tracks the recent stream only,
    so it falls when the domain is used up whatever order the samples came in.
    """

    window: int = 200
    threshold: float = 0.8
    min_novelty: float = 0.05
    offers: int = 0
    _flags: deque[bool] = field(default_factory=deque, repr=False)
    _novel: int = 0

    def is_new(self, nearest: float | None) -> bool:
        return nearest is None or nearest < self.threshold

    def offer(self, nearest: float | None) -> None:
        """Count one offer, given its highest cosine to what was kept before it (None: nothing was)."""
        new = self.is_new(nearest)
        self._flags.append(new)
        self._novel += new
        if len(self._flags) > self.window:
            self._novel -= self._flags.popleft()
        self.offers += 1

    @property
    def rate(self) -> float | None:
        """The share of new offers among the last `window` (fewer at the start); None before any."""
        return self._novel / len(self._flags) if self._flags else None

    @property
    def exhausted(self) -> bool:
        """A full window of offers whose novelty rate is below `min_novelty`."""
        rate = self.rate
        return len(self._flags) == self.window and rate is not None and rate < self.min_novelty
