"""The fake backend (`fake:NAME`): deterministic text and scores without weights, torch or a GPU.

For dry runs of a pipeline or a config in seconds (`--model fake:echo`) and for the test suite. Its
text is not knowledge of anything: it recombines the prompt's own words with a fixed vocabulary, in the
shapes our templates ask for (a numbered list, a question on one line and its answer on the next, or
plain sentences), so every stage has realistic records to work on.

- `fake:echo` generates, scores (log-probs from a fixed per-word table), embeds (hidden states: hashed
  bags of words) and tokenizes (whitespace words).
- `fake:text-only` only generates, to try a command's refusal of a capability a backend lacks.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from biforget.config import ModelOptions
from biforget.errors import ModelError
from biforget.models.base import Capability, GenerationRequest, TokenLogprobs
from biforget.records import derive_seed

NAME = "fake"
# A request and a draw index in, one completion out; must be deterministic.
Script = Callable[[GenerationRequest, int], str]

_WORDS = re.compile(r"[A-Za-z][A-Za-z'-]{2,}")
_STOP = frozenset(
    [
        "the",
        "and",
        "for",
        "with",
        "that",
        "this",
        "from",
        "into",
        "about",
        "your",
        "their",
        "them",
        "they",
        "what",
        "which",
        "when",
        "where",
        "who",
        "why",
        "how",
        "write",
        "give",
        "list",
        "each",
        "more",
        "most",
        "some",
        "other",
        "than",
        "then",
        "also",
        "only",
        "just",
        "such",
        "very",
        "like",
        "make",
        "made",
        "does",
        "please",
        "answer",
        "question",
        "passage",
        "text",
        "paragraph",
        "following",
        "below",
        "above",
        "using",
        "without",
    ]
)
_VOCABULARY = [
    "archive",
    "beacon",
    "chronicle",
    "council",
    "courtyard",
    "covenant",
    "decree",
    "emblem",
    "festival",
    "garrison",
    "guild",
    "harbor",
    "heritage",
    "journey",
    "lantern",
    "ledger",
    "legend",
    "library",
    "manor",
    "meadow",
    "orchard",
    "passage",
    "pilgrim",
    "quarry",
    "relic",
    "ritual",
    "river",
    "scholar",
    "signal",
    "summit",
    "tapestry",
    "tavern",
    "tower",
    "treaty",
    "valley",
    "vault",
    "voyage",
    "warden",
    "workshop",
]
_VERBS = [
    "describes",
    "recalls",
    "shapes",
    "guards",
    "reveals",
    "connects",
    "follows",
    "marks",
    "shelters",
    "records",
]
_TOKEN = re.compile(r"\S+")


def _content_words(prompt: str) -> list[str]:
    words = [w for w in _WORDS.findall(prompt) if w.lower() not in _STOP]
    return words or ["topic"]


def _rng(request: GenerationRequest, draw: int) -> random.Random:
    digest = hashlib.sha256(request.prompt.encode("utf-8")).hexdigest()[:12]
    return random.Random(derive_seed(request.seed, "fake", digest, draw, request.temperature))


def _sentence(rng: random.Random, words: Sequence[str]) -> str:
    subject = " ".join(rng.sample(list(words), k=min(2, len(words))))
    rest = " ".join(rng.choice(_VOCABULARY) for _ in range(rng.randint(4, 7)))
    return f"The {subject} {rng.choice(_VERBS)} the {rest}."


def echo(request: GenerationRequest, draw: int) -> str:
    """Text in the shape the prompt asks for, from its own words and a fixed vocabulary."""
    rng = _rng(request, draw)
    words = _content_words(request.prompt)
    lowered = request.prompt.lower()
    if "question:" in lowered and "answer:" in lowered:
        subject = " ".join(rng.sample(words, k=min(2, len(words))))
        question = (
            f"What {rng.choice(_VERBS).removesuffix('s')}s the {subject} in the {rng.choice(_VOCABULARY)}?"
        )
        return f"Question: {question}\nAnswer: {_sentence(rng, words)} {_sentence(rng, words)}"
    if re.search(r"\blist\b", lowered):
        items = []
        for index in range(1, 7):
            name = f"{rng.choice(words).capitalize()} {rng.choice(_VOCABULARY).capitalize()}"
            items.append(f"{index}. {name} {rng.choice(_VOCABULARY).capitalize()}")
        return "\n".join(items)
    return " ".join(_sentence(rng, words) for _ in range(rng.randint(2, 4)))


SCRIPTS: dict[str, Script] = {"echo": echo, "text-only": echo}
# Named models that only generate.
TEXT_ONLY = frozenset({"text-only"})
FULL = frozenset(
    {Capability.LOGPROBS, Capability.DISTRIBUTION, Capability.HIDDEN_STATES, Capability.TOKENIZER}
)


def load(target: str, options: ModelOptions) -> FakeModel:
    from biforget.models import parse_model_args
    from biforget.models.args import check_local_options

    check_local_options(options)  # a dry run refuses what the hf run it stands in for would
    parse_model_args(options, NAME, {})
    if target not in SCRIPTS:
        known = ", ".join(f"fake:{name}" for name in sorted(SCRIPTS))
        raise ModelError(f"no fake model {target!r} (known: {known})")
    capabilities = frozenset() if target in TEXT_ONLY else FULL
    return FakeModel(
        SCRIPTS[target], name=f"fake:{target}", batch_size=options.batch_size, capabilities=capabilities
    )


def _begin_with(text: str, reply_start: str) -> str:
    """A scripted reply as a continuation of the reply's given start: scripts write whole replies, so
    one that already opens with the start is taken as its continuation."""
    if not reply_start or text.startswith(reply_start):
        return text
    return reply_start + text if text[:1].isspace() else f"{reply_start} {text}"


class WordTokenizer:
    """Whitespace words as tokens; ids are handed out in order of first sight."""

    name = "fake-words"

    def __init__(self) -> None:
        self._ids: dict[str, int] = {}
        self._words: list[str] = []

    def _id(self, word: str) -> int:
        if word not in self._ids:
            self._ids[word] = len(self._words)
            self._words.append(word)
        return self._ids[word]

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        return [[self._id(word) for word in _TOKEN.findall(text)] for text in texts]

    def decode(self, ids: Sequence[int]) -> str:
        return " ".join(self._words[int(i)] for i in ids)


class HashEmbedder:
    """Bag-of-words vectors hashed into `dim` dimensions and L2-normalised: equal texts embed equally,
    texts sharing most words embed close, unrelated texts far apart."""

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


def word_logprob(word: str) -> float:
    """The fixed table: every word's log-probability, from its hash, in [-6, -0.1]."""
    bucket = int(hashlib.md5(word.lower().encode()).hexdigest(), 16) % 60
    return -0.1 - bucket / 10


@dataclass
class FakeModel:
    """The TextModel interface on a script; remembers every request, for tests."""

    script: Script
    name: str = "fake:echo"
    batch_size: int = ModelOptions.batch_size
    capabilities: frozenset[str] = FULL
    backend: str = NAME
    requests: list[GenerationRequest] = field(default_factory=list)
    tokenizer: WordTokenizer = field(default_factory=WordTokenizer)

    def generate(self, requests: Sequence[GenerationRequest]) -> list[list[str]]:
        self.requests.extend(requests)
        # Greedy decoding has one answer: its n copies are the first draw's.
        return [
            [
                _begin_with(self.script(request, draw if request.temperature > 0 else 0), request.reply_start)
                for draw in range(request.n)
            ]
            for request in requests
        ]

    def token_logprobs(
        self, texts: Sequence[str], context: Sequence[str] | None = None
    ) -> list[TokenLogprobs]:
        if Capability.LOGPROBS not in self.capabilities:
            raise ModelError(f"{self.name} gives no log-probs")
        if context is not None and len(context) != len(texts):
            raise ValueError("context must give one string per text")
        out = []
        for text in texts:
            words = _TOKEN.findall(text)
            ids = np.asarray(self.tokenizer.encode([text])[0], dtype=np.int64)
            values = np.asarray([word_logprob(w) for w in words], dtype=np.float64)
            out.append(TokenLogprobs(ids, values, np.full_like(values, -3.0), np.ones_like(values)))
        return out

    def mean_hidden_states(self, texts: Sequence[str]) -> np.ndarray:
        if Capability.HIDDEN_STATES not in self.capabilities:
            raise ModelError(f"{self.name} gives no hidden states")
        return HashEmbedder().embed(texts)
