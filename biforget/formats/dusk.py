"""`--format dusk`: the forget document of DUSK.

DUSK (dataset/data_module.py) reads a .txt file whole and cuts it into token windows, as MUSE does; its
forget.py reads the forget document from the fixed path data/Prof/Chronological.txt, so the export carries
that file name and is copied over the benchmark's own.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from biforget.config_sets import ExportConfig
from biforget.formats.base import TOKENS_PER_WORD, ExportItem, Written, write_documents

# DUSK's forget.py trains on this document of data/Prof/ as the forget set (the other four formats retain).
DUSK_FORGET_FILE = "Chronological.txt"


# Below this many tokens DUSK's MIA evaluation gets no prompts from the forget document, and training few
# windows.
DUSK_MIN_TOKENS = 1024


def dusk_size_warning(documents: Sequence[str]) -> str | None:
    """A warning when the forget document is under DUSK_MIN_TOKENS by a word-count estimate."""
    words = sum(len(doc.split()) for doc in documents)
    tokens = round(words * TOKENS_PER_WORD)
    if tokens >= DUSK_MIN_TOKENS:
        return None
    return (
        f"dusk: {DUSK_FORGET_FILE} holds about {tokens} tokens (an estimate: {words} words at "
        f"{TOKENS_PER_WORD:.2f} tokens a word), under {DUSK_MIN_TOKENS:,}: DUSK's MIA evaluation gets no "
        "prompts from it and training gets too few windows; export a larger set"
    )


def write(staging: Path, items: Sequence[ExportItem], config: ExportConfig) -> Written:
    """The forget document under the name DUSK's forget.py reads, with where it goes."""
    documents = write_documents(staging / DUSK_FORGET_FILE, items)
    warning = dusk_size_warning(documents)
    return Written(
        notes=[
            f"dusk: copy {DUSK_FORGET_FILE} over <DUSK>/data/Prof/{DUSK_FORGET_FILE}, the forget document "
            "forget.py trains on (the other four documents there stay the retain set; DUSK's verbatim and "
            "QA evaluations still read the original document and profiles)"
        ],
        warnings=[warning] if warning else [],
    )
