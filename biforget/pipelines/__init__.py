"""The stages that make, check and write out forget sets: seeds, synthesize, probe, rewrite, evaluate,
export."""

from __future__ import annotations

from biforget.models.base import TextModel

# The smallest wave of requests a stage hands to the backend at once (see `wave_size`).
WAVE_REQUESTS = 32


def wave_size(model: TextModel) -> int:
    """Requests a stage hands to the backend at once: enough to fill its batches, few enough to stream
    records out as they are made. Only how often records are flushed depends on it; no plan, seed or id."""
    return max(WAVE_REQUESTS, model.batch_size)
