"""`--format muse`: forget.txt and forget.json for muse_bench.

muse_bench (baselines/dataset.py) reads a .txt file whole, tokenizes it as one stream and cuts it into
fixed-length token windows, so document boundaries never reach training. The documents are still written
one block each, separated by one blank line (blank lines inside a document collapsed), so the file splits
back into records exactly. muse_bench also reads a .json list of strings, one padded or cut training row
per string, and nothing else (no .jsonl).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from biforget.config_sets import ExportConfig
from biforget.formats.base import (
    QA_ELSEWHERE,
    TOKENS_PER_WORD,
    ExportItem,
    Written,
    estimated_tokens,
    qa_as_text_note,
    write_documents,
)
from biforget.io.export import write_text

# muse_bench pads or cuts each string of a .json forget file to --max_len tokens; its scripts pass 2048.
MUSE_WINDOW = 2048


def muse_json_note(documents: Sequence[str], window: int = MUSE_WINDOW) -> str:
    """What muse_bench's .json reader makes of `documents`: each string padded (or cut) to `window` tokens,
    the padding trained on like text (its labels are the input ids, its attention mask all ones)."""
    used = sum(min(window, estimated_tokens(doc)) for doc in documents)
    padding = 1 - used / (window * len(documents))
    return (
        "muse: train from forget.txt (--data_file forget.txt); forget.json pads each of its "
        f"{len(documents)} string(s) to --max_len and trains on the padding: at {window} tokens about "
        f"{padding:.0%} of the positions would be padding (estimated at {TOKENS_PER_WORD:.2f} tokens a word)"
    )


def muse_size_warning(documents: Sequence[str], window: int = MUSE_WINDOW) -> str | None:
    """A warning when the whole set is under one `window`-token window, by a word-count estimate.

    muse_bench cuts forget.txt into windows of `window` tokens (a BOS and `window` - 1 text tokens) and
    fills a short last window with the start of the first; a set under one window makes one row, the
    text followed by itself and cut at `window` tokens, so each epoch is a single step on one row."""
    words = sum(len(doc.split()) for doc in documents)
    tokens = round(words * TOKENS_PER_WORD)
    if tokens >= window - 1:
        return None
    return (
        f"muse: forget.txt holds about {tokens} tokens (an estimate: {words} words at {TOKENS_PER_WORD:.2f} "
        f"tokens a word), under one {window:,}-token window (--max_len {window}): muse_bench makes one "
        "training row of it, the text followed by itself, so each epoch is one step on that row; about "
        f"{window - 1 - tokens} more tokens fill one window"
    )


def write(staging: Path, items: Sequence[ExportItem], config: ExportConfig) -> Written:
    """forget.txt for muse_bench's --data_file, and forget.json (a list of strings) for its .json reader."""
    documents = write_documents(staging / "forget.txt", items)
    write_text(staging / "forget.json", json.dumps(documents, ensure_ascii=False, indent=1) + "\n")
    note = qa_as_text_note("muse", items, QA_ELSEWHERE)
    warning = muse_size_warning(documents)
    return Written(
        notes=[*([note] if note else []), muse_json_note(documents)], warnings=[warning] if warning else []
    )
