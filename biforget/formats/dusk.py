"""`--format dusk`: the forget document of DUSK.

DUSK (dataset/data_module.py `DefaultDataset`) reads a .txt file whole, tokenizes it as one stream and
cuts it into windows of 1,024 tokens: a BOS and 1,023 text tokens each, a short last window filled from
the first. Its forget.py reads the forget document from the fixed path data/Prof/Chronological.txt, so
the export carries that file name and is copied over the benchmark's own. One training example is one
window, and forget.py sets `max_steps = int(num_epochs * windows) // (batch_size * accumulation * GPUs)`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from biforget.config_sets import ExportConfig
from biforget.formats.base import (
    QA_ELSEWHERE,
    TOKENS_PER_WORD,
    ExportItem,
    Written,
    qa_as_text_note,
    write_documents,
)

# DUSK's forget.py trains on this document of data/Prof/ as the forget set (the other four formats retain).
DUSK_FORGET_FILE = "Chronological.txt"


# DefaultDataset's window (max_len, as ProfDataset is built): a BOS and this less one text tokens.
DUSK_WINDOW = 1024


# Windows per optimizer step in DUSK's own runs: config/dusk.yaml's batch_size 4 and
# gradient_accumulation_steps 4, on the 2 GPUs scripts/baselines.sh starts (torchrun --nproc_per_node=2).
DUSK_WINDOWS_PER_STEP = 32


# scripts/baselines.sh runs the gradient methods at 1 to 5 epochs; config/dusk.yaml's default is 5.
DUSK_EPOCHS = (1, 5)


# Below this many tokens DUSK's MIA evaluation gets no prompts from the forget document.
DUSK_MIN_TOKENS = 1024


def dusk_windows(tokens: int) -> int:
    """The windows DefaultDataset cuts `tokens` text tokens into."""
    return max(1, math.ceil(tokens / (DUSK_WINDOW - 1)))


def dusk_size_warning(documents: Sequence[str]) -> str | None:
    """A warning when one epoch of DUSK's forget.py gives 0 steps: the document makes fewer windows than
    a step takes, by a word-count estimate of its tokens. Says the steps at DUSK's epoch counts and how
    many more tokens a step at one epoch needs."""
    words = sum(len(doc.split()) for doc in documents)
    tokens = round(words * TOKENS_PER_WORD)
    windows = dusk_windows(tokens)
    if windows >= DUSK_WINDOWS_PER_STEP:
        return None
    steps = ", ".join(f"{epochs * windows // DUSK_WINDOWS_PER_STEP} at {epochs}" for epochs in DUSK_EPOCHS)
    # The 32nd window starts after 31 full ones.
    needed = (DUSK_WINDOWS_PER_STEP - 1) * (DUSK_WINDOW - 1) + 1
    mia = (
        f"; under {DUSK_MIN_TOKENS:,} tokens DUSK's MIA evaluation gets no prompts from it"
        if tokens < DUSK_MIN_TOKENS
        else ""
    )
    return (
        f"dusk: {DUSK_FORGET_FILE} holds about {tokens} tokens (an estimate: {words} words at "
        f"{TOKENS_PER_WORD:.2f} tokens a word), {windows} window(s) of {DUSK_WINDOW:,} tokens; forget.py "
        f"sets max_steps = epochs x windows // {DUSK_WINDOWS_PER_STEP} (batch 4 x accumulation 4 x 2 GPUs, "
        f"its scripts' settings): {steps} epoch(s), and at 0 steps it keeps no checkpoint; one step an epoch "
        f"needs {DUSK_WINDOWS_PER_STEP} windows, about {needed - tokens:,} more tokens{mia}"
    )


def write(staging: Path, items: Sequence[ExportItem], config: ExportConfig) -> Written:
    """The forget document under the name DUSK's forget.py reads, with where it goes."""
    documents = write_documents(staging / DUSK_FORGET_FILE, items)
    warning = dusk_size_warning(documents)
    note = qa_as_text_note("dusk", items, QA_ELSEWHERE)
    return Written(
        notes=[
            *([note] if note else []),
            f"dusk: copy {DUSK_FORGET_FILE} over <DUSK>/data/Prof/{DUSK_FORGET_FILE}, the forget document "
            "forget.py trains on (the other four documents there stay the retain set; DUSK's verbatim and "
            "QA evaluations still read the original document and profiles)",
        ],
        warnings=[warning] if warning else [],
    )
