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
from biforget.formats.base import TOKENS_PER_WORD, ExportItem, Written, estimated_tokens, write_documents
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


def write(staging: Path, items: Sequence[ExportItem], config: ExportConfig) -> Written:
    """forget.txt for muse_bench's --data_file, and forget.json (a list of strings) for its .json reader."""
    documents = write_documents(staging / "forget.txt", items)
    write_text(staging / "forget.json", json.dumps(documents, ensure_ascii=False, indent=1) + "\n")
    return Written(notes=[muse_json_note(documents)])
