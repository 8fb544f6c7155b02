"""Membership-inference scores from teacher-forced token log-probabilities.

Min-K% (Shi et al., 2024): the mean of the lowest k% of a text's token log-probabilities. A text the model
has memorised has few surprising tokens, so its lowest log-probabilities stay high.

Min-K%++ (Zhang et al., 2025): each token's log-probability standardised by the mean and standard
deviation of the log-probability under the model's own next-token distribution at that position,
`(log p(x_t) - E[log p(z)]) / sqrt(Var[log p(z)])`, then the mean of the lowest k%. It asks whether the
token is a mode of the distribution rather than merely likely.

Both take `max(1, int(k * n))` of the n scored tokens, so a text shorter than 1/k tokens still counts its
worst token. Higher means "more likely seen in training". A text with no scored token has no score.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from biforget.models.base import TokenLogprobs


def lowest_count(n: int, k: float) -> int:
    """How many of n tokens form the lowest k%: at least one, as the published implementations do."""
    return max(1, int(k * n))


def _mean_lowest(values: np.ndarray, k: float) -> float | None:
    if values.shape[0] == 0:
        return None
    count = lowest_count(int(values.shape[0]), k)
    lowest = np.partition(values.astype(np.float64), count - 1)[:count]
    return float(lowest.mean())


def mink(scores: TokenLogprobs, k: float) -> float | None:
    """Min-K%: mean of the lowest `max(1, int(k*n))` token log-probabilities; None with no scored token."""
    return _mean_lowest(scores.logprobs, k)


def standardised(scores: TokenLogprobs) -> np.ndarray:
    """Per-token Min-K%++ values. A position whose distribution has zero variance (all mass on one token,
    so the token's log-probability equals the mean) contributes 0 rather than 0/0."""
    if scores.expected is None or scores.variance is None:
        raise ValueError("Min-K%++ needs the next-token distribution's mean and variance")
    logprobs = scores.logprobs.astype(np.float64)
    expected = scores.expected.astype(np.float64)
    sigma = np.sqrt(np.maximum(scores.variance.astype(np.float64), 0.0))
    safe = np.where(sigma > 0, sigma, 1.0)
    return np.where(sigma > 0, (logprobs - expected) / safe, 0.0)


def mink_pp(scores: TokenLogprobs, k: float) -> float | None:
    """Min-K%++: mean of the lowest `max(1, int(k*n))` standardised token log-probabilities; None when
    the backend gave no distribution statistics."""
    if scores.expected is None or scores.variance is None:
        return None
    return _mean_lowest(standardised(scores), k)


@dataclass(frozen=True)
class MiaScores:
    """Both scores of one text; None for a text with no scored token."""

    mink: float | None
    mink_pp: float | None
    tokens: int

    def get(self, name: str) -> float | None:
        return self.mink if name == "mink" else self.mink_pp

    def as_dict(self) -> dict[str, float]:
        return {
            name: float(value)
            for name, value in (("mink", self.mink), ("mink_pp", self.mink_pp))
            if value is not None
        }


def mia_scores(token_scores: Sequence[TokenLogprobs], k: float) -> list[MiaScores]:
    """Min-K% and Min-K%++ of each text from the model layer's `token_logprobs` output."""
    return [MiaScores(mink(s, k), mink_pp(s, k), len(s)) for s in token_scores]
