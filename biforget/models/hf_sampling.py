"""Per-row sampling for the hf backend: every row draws from its own generator.

A logits processor adds Gumbel noise from a row's own torch generator to its temperature-scaled,
top-p-masked logits; greedy decoding then takes the argmax, which is an exact sample from the same
distribution. A row's text therefore never depends on the rows it shares a batch with.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch


class RowSampler:
    """A logits processor that samples each row from its own generator (see the module docstring).

    Rows at temperature 0 keep their logits, so the greedy step takes their argmax.
    """

    def __init__(
        self, temperatures: Sequence[float], top_ps: Sequence[float], seeds: Sequence[int], device: Any
    ):
        self.sampled = [t > 0 for t in temperatures]
        self.temperatures = torch.tensor(
            [t if t > 0 else 1.0 for t in temperatures], device=device
        ).unsqueeze(1)
        self.top_ps = torch.tensor(list(top_ps), device=device).unsqueeze(1)
        self.generators = [torch.Generator(device=device).manual_seed(int(seed)) for seed in seeds]
        self.any_top_p = any(p < 1.0 for p in top_ps)

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        if not any(self.sampled):
            return scores
        warped = scores / self.temperatures.to(scores.dtype)
        if self.any_top_p:
            ordered, order = warped.sort(dim=-1, descending=True)
            probs = ordered.softmax(dim=-1)
            # A token is cut when the tokens ranked above it already hold top_p of the mass; the first
            # token always stays.
            cut = (probs.cumsum(dim=-1) - probs) > self.top_ps.to(probs.dtype)
            warped = warped.masked_fill(cut.scatter(-1, order, cut), float("-inf"))
        # -log(E) for E ~ Exp(1) is a standard Gumbel variable.
        noise = torch.stack(
            [
                torch.empty(scores.shape[-1], device=scores.device).exponential_(generator=g)
                for g in self.generators
            ]
        )
        perturbed = warped - noise.log().to(warped.dtype)
        sampled = torch.tensor(self.sampled, device=scores.device).unsqueeze(1)
        return torch.where(sampled, perturbed, scores)
