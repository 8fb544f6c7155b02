"""Remote-clique diversity: the incremental tracker equals the brute-force mean pairwise cosine distance."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import pdist

from biforget.metrics.diversity import DiversityTracker, mean_pairwise_cosine_distance


def random_vectors(n: int, dim: int = 24, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    # Shifted so the vectors share a direction, like sentence embeddings, and distances are not all ~1.
    return (rng.normal(size=(n, dim)) + 1.5).astype(np.float32)


@pytest.mark.parametrize("n", [2, 3, 17, 250])
def test_exact_diversity_matches_scipy(n: int) -> None:
    vectors = random_vectors(n, seed=n)
    expected = float(np.mean(pdist(vectors.astype(np.float64), "cosine")))
    assert mean_pairwise_cosine_distance(vectors) == pytest.approx(expected, abs=1e-6)


def test_tracker_matches_brute_force_after_every_sample() -> None:
    vectors = random_vectors(120, seed=3)
    tracker = DiversityTracker(check_every=1000)
    for count in range(1, len(vectors) + 1):
        tracker.add(vectors[count - 1])
        if count >= 2:
            expected = float(np.mean(pdist(vectors[:count].astype(np.float64), "cosine")))
            assert tracker.diversity == pytest.approx(expected, abs=1e-6)
    assert tracker.count == 120


def test_fewer_than_two_vectors_have_no_diversity() -> None:
    assert mean_pairwise_cosine_distance(random_vectors(1)) is None
    tracker = DiversityTracker()
    assert tracker.diversity is None
    tracker.add(random_vectors(1)[0])
    assert tracker.diversity is None


def test_convergence_rule_stops_when_the_gain_between_checks_is_below_epsilon() -> None:
    rng = np.random.default_rng(1)
    tracker = DiversityTracker(check_every=10, epsilon=0.001)
    # Ten tight variations of one vector, then spread-out ones: diversity rises, then flattens.
    base = rng.normal(size=16)
    stopped_at = None
    for i in range(400):
        vector = base + (0.05 if i < 10 else 3.0) * rng.normal(size=16)
        if tracker.add(vector):
            stopped_at = tracker.count
            break
    assert stopped_at is not None and stopped_at % 10 == 0
    assert len(tracker.curve) >= 2
    (_, before), (_, last) = tracker.curve[-2], tracker.curve[-1]
    assert last - before < 0.001
    # Every earlier check gained at least epsilon, otherwise it would have stopped there.
    gains = [b - a for (_, a), (_, b) in zip(tracker.curve, tracker.curve[1:], strict=False)]
    assert all(g >= 0.001 for g in gains[:-1])
