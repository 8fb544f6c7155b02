"""The small, batch-first interfaces every backend serves. Batch in, batch out, input order kept."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True)
class TokenLogprobs:
    """Teacher-forced scores of one text under the raw model distribution (temperature 1, no top-k/p).

    One entry per scored token (every text token that has a prediction):
    `logprobs[t] = log p(x_t | x_<t)`, `expected[t] = E_{z~p(.|x_<t)}[log p(z | x_<t)]` and
    `variance[t] = Var_{z~p(.|x_<t)}[log p(z | x_<t)]`, which Min-K%++ standardises with.
    """

    token_ids: np.ndarray
    logprobs: np.ndarray
    expected: np.ndarray
    variance: np.ndarray

    def __len__(self) -> int:
        return int(self.logprobs.shape[0])


@runtime_checkable
class TextModel(Protocol):
    """A target model: it writes text and scores text."""

    name: str
    batch_size: int

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
        """`n` completions per prompt, in prompt order; the same call and seed give the same text.

        `chat=False` sends the prompts as raw text to be continued (few-shot completion prompts) even
        when the model has a chat template."""
        ...

    def token_logprobs(
        self, texts: Sequence[str], context: Sequence[str] | None = None
    ) -> list[TokenLogprobs]:
        """Scores of each text's tokens, optionally conditioned on a context string per text."""
        ...


@runtime_checkable
class Embedder(Protocol):
    """Maps texts to L2-normalised vectors (float32, one row per text)."""

    name: str

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...
