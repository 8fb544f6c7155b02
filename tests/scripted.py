"""A scripted backend: a TextModel and an Embedder that return known outputs, for pipeline tests."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

import numpy as np

from biforget.models.base import TokenLogprobs


class ScriptedModel:
    """Answers each prompt with the output `script(prompt, draw, seed)` returns, and records every call.

    Deterministic by construction, so tests can assert on exact records.
    """

    def __init__(
        self,
        script: Callable[[str, int, int], str],
        name: str = "scripted",
        batch_size: int = 8,
        stop_at: int | None = None,
    ):
        self.script = script
        self.name = name
        self.batch_size = batch_size
        # Raise KeyboardInterrupt on generate call number `stop_at`, like Ctrl-C mid-run.
        self.stop_at = stop_at
        self.calls: list[dict[str, object]] = []

    def generate(
        self,
        prompts: Sequence[str],
        *,
        temperature: float,
        top_p: float,
        max_new_tokens: int,
        n: int = 1,
        seed: int = 0,
        chat: bool = True,
    ) -> list[list[str]]:
        if self.stop_at is not None and len(self.calls) + 1 == self.stop_at:
            raise KeyboardInterrupt
        self.calls.append(
            {"prompts": list(prompts), "temperature": temperature, "n": n, "seed": seed, "chat": chat}
        )
        return [[self.script(prompt, draw, seed) for draw in range(n)] for prompt in prompts]

    def token_logprobs(
        self, texts: Sequence[str], context: Sequence[str] | None = None
    ) -> list[TokenLogprobs]:
        out = []
        for text in texts:
            words = text.split()
            values = -np.arange(1, len(words) + 1, dtype=np.float32) / 10
            out.append(TokenLogprobs(np.arange(len(words)), values, values - 1, np.ones_like(values)))
        return out


class HashEmbedder:
    """Bag-of-words vectors hashed into 64 dimensions and L2-normalised: equal texts embed equally,
    texts sharing most words embed close, unrelated texts embed far apart."""

    name = "hash-embedder"

    def __init__(self, dim: int = 64) -> None:
        self.dim = dim

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in text.lower().split():
                bucket = int(hashlib.md5(word.encode()).hexdigest(), 16) % self.dim
                out[row, bucket] += 1.0
            norm = np.linalg.norm(out[row])
            if norm:
                out[row] /= norm
        return out
