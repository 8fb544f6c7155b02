"""Membership leakage of the domain: how well Min-K% tells a set from text the target never saw.

For each model and each of the forget and held-out sets, the ROC AUC of separating the set's records
(members) from the `--nonmember` records by their Min-K% score (higher: more likely seen in training).
The AUC is computed exactly as the Mann-Whitney rank statistic: the share of (member, non-member) pairs
in which the member scores higher, a tie counting one half. 0.5 means the model holds nothing that tells
the set from unseen text; forgetting the domain moves the held-out AUC toward 0.5.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from biforget.pipelines.audit import SetScores

# The sets whose membership is measured against the non-member text.
LEAK_ROLES = ("forget", "heldout")


def roc_auc(members: Sequence[float], nonmembers: Sequence[float]) -> float | None:
    """P(member score > non-member score) + P(tie) / 2, from midranks of the pooled scores; None when
    either side is empty."""
    if not len(members) or not len(nonmembers):
        return None
    pooled = np.concatenate([np.asarray(members, np.float64), np.asarray(nonmembers, np.float64)])
    order = np.argsort(pooled, kind="mergesort")
    # Tied scores share the mean of the ranks they span (1-based): a tie between a member and a
    # non-member then counts one half.
    _, first, counts = np.unique(pooled[order], return_index=True, return_counts=True)
    ranks = np.empty(len(pooled))
    ranks[order] = np.repeat(first + (counts + 1) / 2, counts)
    n, m = len(members), len(nonmembers)
    wins = float(ranks[:n].sum()) - n * (n + 1) / 2
    return wins / (n * m)


def _scored(values: Sequence[float | None]) -> list[float]:
    return [v for v in values if v is not None]


def leak_of(scores: Mapping[str, SetScores]) -> dict[str, Any]:
    """Per set beside the non-member one: the AUC by Min-K% and both sides' sizes."""
    nonmembers = _scored(scores["nonmember"].mink)
    out: dict[str, Any] = {}
    for role in LEAK_ROLES:
        if role in scores:
            members = _scored(scores[role].mink)
            auc = roc_auc(members, nonmembers)
            out[role] = {
                "auc": None if auc is None else round(auc, 6),
                "members": len(members),
                "nonmembers": len(nonmembers),
            }
    return out


def leak_change(model: Mapping[str, Any], target: Mapping[str, Any]) -> dict[str, float | None]:
    """Per set, the model's AUC minus the target's."""
    change: dict[str, float | None] = {}
    for role, row in model.items():
        before = target.get(role, {}).get("auc")
        change[role] = None if row["auc"] is None or before is None else round(row["auc"] - before, 6)
    return change
