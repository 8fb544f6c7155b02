"""The small, request-based interfaces every backend serves. Requests in, results out, input order kept."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from biforget.errors import UsageError

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True)
class GenerationRequest:
    """One prompt to complete `n` times.

    The seed belongs to the request and comes from its place in the caller's work plan, so a request's
    text never depends on which other requests a backend batches it with. `temperature=0` is greedy.
    `chat=False` sends the prompt as raw text to be continued (few-shot completion prompts) even when
    the model has a chat template. `reply_start` is written at the start of the model's turn for it to
    continue; every completion returned begins with it.
    """

    prompt: str
    temperature: float
    top_p: float = 1.0
    max_new_tokens: int = 128
    n: int = 1
    seed: int = 0
    chat: bool = True
    reply_start: str = ""


@dataclass(frozen=True)
class TokenLogprobs:
    """Teacher-forced scores of one text under the raw model distribution (temperature 1, no top-k/p).

    One entry per scored token (every text token that has a prediction):
    `logprobs[t] = log p(x_t | x_<t)`, `expected[t] = E_{z~p(.|x_<t)}[log p(z | x_<t)]` and
    `variance[t] = Var_{z~p(.|x_<t)}[log p(z | x_<t)]`, which Min-K%++ standardises with. A backend
    without the full next-token distribution leaves `expected` and `variance` None.
    """

    token_ids: np.ndarray
    logprobs: np.ndarray
    expected: np.ndarray | None = None
    variance: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.logprobs.shape[0])


class Capability:
    """What a backend can do beyond generating text; commands check these before any work."""

    LOGPROBS = "token log-probs"
    DISTRIBUTION = "next-token distribution statistics"
    HIDDEN_STATES = "hidden states"
    TOKENIZER = "tokenizer"
    TRAINING = "trainable weights"


@runtime_checkable
class TextModel(Protocol):
    """A target model: it writes text and, where its capabilities say so, scores text."""

    name: str
    backend: str
    capabilities: frozenset[str]
    # Requests a backend runs per forward pass; a throughput setting, never part of a plan or an id.
    batch_size: int

    def generate(self, requests: Sequence[GenerationRequest]) -> list[list[str]]:
        """`request.n` completions per request, in request order; the same request gives the same text."""
        ...

    def token_logprobs(
        self, texts: Sequence[str], context: Sequence[str] | None = None
    ) -> list[TokenLogprobs]:
        """Scores of each text's tokens, optionally conditioned on a context string per text
        (capability LOGPROBS; `expected`/`variance` filled with DISTRIBUTION)."""
        ...

    @property
    def tokenizer(self) -> Tokenizer:
        """The model's tokenizer (capability TOKENIZER)."""
        ...

    def mean_hidden_states(self, texts: Sequence[str]) -> np.ndarray:
        """Mean-pooled last hidden state per text, L2-normalised (capability HIDDEN_STATES)."""
        ...


@runtime_checkable
class Tokenizer(Protocol):
    """What token counting and chunking need of the target model's tokenizer."""

    name: str

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of each text, without special tokens."""
        ...

    def decode(self, ids: Sequence[int]) -> str: ...


@runtime_checkable
class Embedder(Protocol):
    """Maps texts to L2-normalised vectors (float32, one row per text)."""

    name: str

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


def require(model: TextModel, capability: str, purpose: str) -> None:
    """Refuse, before any work, a request the backend cannot serve (exit 2, naming both)."""
    if capability not in model.capabilities:
        raise UsageError(
            f"{purpose} needs {capability}, which the {model.backend} backend ({model.name}) does not give"
        )
