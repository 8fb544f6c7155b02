"""`--format rmu`: the forget corpus of the RMU reference code.

The RMU reference (centerforaisafety/wmdp, rmu/utils.py `get_data`) reads `data/{name}.jsonl`, parses each
line as JSON only when the name contains `bio-forget-corpus` (otherwise the raw line is the text), keeps
texts longer than `--min_len` characters (rmu/unlearn.py default 0, so every non-empty text) and batches
them by `--batch_size` (default 4).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from biforget.config_sets import ExportConfig
from biforget.formats.base import ExportItem, Written, write_jsonl

# rmu/unlearn.py: --batch_size defaults to 4 and --max_num_batches to 80; the reference Zephyr run
# (run_rmu_zephyr.ipynb) uses 150 batches of 4.
RMU_BATCH = 4


RMU_STEP_BUDGETS = (80, 150)


def rmu_file_name(name: str) -> str:
    return f"{name}-bio-forget-corpus.jsonl"


def rmu_note(texts: Sequence[str]) -> str:
    """How many steps of an RMU run the set can feed, at the reference script's batch size.

    With one forget corpus, rmu/unlearn.py runs min(--max_num_batches, forget batches, retain batches) steps.
    Every text counts: exported texts are never empty, and the default --min_len 0 keeps any non-empty text.
    """
    batches = len(texts) // RMU_BATCH + (1 if len(texts) % RMU_BATCH else 0)
    low, high = RMU_STEP_BUDGETS
    head = f"rmu: {len(texts)} text(s) give {batches} batch(es) of {RMU_BATCH} (--batch_size {RMU_BATCH})"
    if batches >= high:
        tail = f"enough for the usual {low}-{high} step runs"
    elif batches >= low:
        tail = f"enough for {low} steps, not {high}: a --max_num_batches {high} run stops after {batches}"
    else:
        tail = f"fewer than the usual {low}-{high} steps: the run stops after {batches}"
    return f"{head}; {tail}"


def write(staging: Path, items: Sequence[ExportItem], config: ExportConfig) -> Written:
    texts = [item.text for item in items]
    write_jsonl(staging / rmu_file_name(config.name), ({"text": text} for text in texts))
    return Written(notes=[rmu_note(texts)])
