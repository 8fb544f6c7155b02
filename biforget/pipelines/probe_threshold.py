"""The membership threshold of `probe --mia`: given, calibrated on reference texts at a false-positive
rate, or set by keeping the top fraction of the candidates; and the Min-K% scoring it is applied to."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from biforget import console
from biforget.config import ProbeConfig
from biforget.console import Tracker
from biforget.errors import InputError
from biforget.metrics.mink import MiaScores, mia_scores
from biforget.models.base import TextModel


def calibrate_threshold(reference_scores: Sequence[float], fpr: float) -> float:
    """The empirical (1 - fpr) quantile of the reference scores.

    With the rule "accepted when the score is above the threshold", at most `floor(fpr * n)` of the n
    reference texts pass, ties included.
    """
    if not reference_scores:
        raise ValueError("calibration needs at least one reference score")
    ordered = sorted(reference_scores)
    allowed = math.floor(fpr * len(ordered) + 1e-9)
    return float(ordered[len(ordered) - allowed - 1])


def pass_rate(scores: Sequence[float], threshold: float) -> float:
    """Fraction of `scores` above `threshold` (what a calibrated threshold lets through)."""
    return sum(1 for s in scores if s > threshold) / len(scores) if scores else 0.0


def keep_top(scores: Sequence[float], keep: float) -> tuple[list[int], float | None]:
    """Indices of the top `max(1, int(keep * m))` of m scores (ties by position) and the lowest kept score."""
    if not scores:
        return [], None
    count = max(1, int(keep * len(scores)))
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))[:count]
    return sorted(order), float(min(scores[i] for i in order))


@dataclass
class Threshold:
    """The membership threshold and how it was chosen, as it goes into `gen` and onto stderr."""

    mode: str
    score: str
    k: float
    value: float | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def provenance(self) -> dict[str, Any]:
        return {"score": self.score, "k": self.k, "mode": self.mode, "threshold": self.value, **self.details}

    def describe(self) -> str:
        shown = "n/a" if self.value is None else f"{self.value:.4f}"
        how = {
            "threshold": "given with --mia-threshold",
            "calibrate": (
                f"the {1 - self.details.get('fpr', 0.0):.3g} quantile of "
                f"{self.details.get('references')} reference text(s) in {self.details.get('calibrate')}, "
                f"{self.details.get('reference_pass_rate', 0.0):.1%} of them pass"
            ),
            "keep": (
                f"the top {self.details.get('keep', 0.0):.0%} of {self.details.get('candidates', 0)} "
                "candidate(s)"
            ),
        }[self.mode]
        return f"probe/mia: threshold {shown} on {self.score} (k {self.k}), mode {self.mode}: {how}"


def score_texts(model: TextModel, texts: Sequence[str], k: float) -> list[MiaScores]:
    """Min-K% and Min-K%++ of each text, teacher-forced on its own under the raw model (batched)."""
    return mia_scores(model.token_logprobs(list(texts)), k) if texts else []


def calibrate(
    model: TextModel, config: ProbeConfig, references: Sequence[str], tracker: Tracker | None = None
) -> Threshold:
    """Score the reference texts and set the threshold at the requested false-positive rate."""
    tracker = tracker or Tracker()
    task = tracker.start("probe/mia: calibrate", total=len(references), unit="texts")
    values: list[float] = []
    unscored = 0
    for start in range(0, len(references), model.batch_size):
        chunk = references[start : start + model.batch_size]
        for scores in score_texts(model, chunk, config.mink_k):
            value = scores.get(config.mia_score)
            if value is None:
                unscored += 1
            else:
                values.append(value)
        tracker.advance(task, len(chunk))
    if unscored:
        console.warn(f"{config.mia_calibrate}: {unscored} reference text(s) too short to score, left out")
    if not values:
        raise InputError("no reference text long enough to score", source=str(config.mia_calibrate))
    value = calibrate_threshold(values, config.mia_fpr)
    return Threshold(
        "calibrate",
        config.mia_score,
        config.mink_k,
        value,
        {
            "calibrate": str(config.mia_calibrate),
            "fpr": config.mia_fpr,
            "references": len(values),
            "reference_pass_rate": pass_rate(values, value),
        },
    )
