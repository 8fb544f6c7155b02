"""`--format rmu`: the forget corpus of the RMU reference code (centerforaisafety/wmdp, rmu/), in the
layouts of both versions of its loader, as a tree to copy into the repository's root.

- The 2024 `get_data` (rmu/utils.py) reads `data/{name}.jsonl`, parses each line as JSON only when the
  name contains `bio-forget-corpus` (otherwise the raw line is the text).
- The current one (since commit c0b6c12, 2025-05-29) asserts that HF_TOKEN is set and reads every forget
  corpus with `datasets.load_dataset(f"cais/wmdp-{name}", split="train")`, taking each row's `text`.
  `load_dataset` reads a local folder at that relative path, from the working directory (the repository
  root, where `python -m rmu.unlearn` runs), before it asks the hub; a JSONL file named `train` there is
  the train split.

Both keep texts longer than `--min_len` characters (rmu/unlearn.py default 0, so every non-empty text)
and batch them by `--batch_size` (default 4).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from biforget.config_sets import ExportConfig
from biforget.formats.base import QA_ELSEWHERE, ExportItem, Written, qa_as_text_note, write_jsonl

# rmu/unlearn.py: --batch_size defaults to 4 and --max_num_batches to 80; the reference Zephyr run
# (run_rmu_zephyr.ipynb) uses 150 batches of 4.
RMU_BATCH = 4


RMU_STEP_BUDGETS = (80, 150)


def rmu_corpus(name: str) -> str:
    """The corpus name to pass as --forget_corpora; it holds `bio-forget-corpus` for the 2024 loader."""
    return f"{name}-bio-forget-corpus"


def rmu_file_name(name: str) -> str:
    """The 2024 loader's file, under data/."""
    return f"{rmu_corpus(name)}.jsonl"


def rmu_dataset_dir(name: str) -> str:
    """The local dataset folder the current loader's `load_dataset("cais/wmdp-NAME")` reads."""
    return f"cais/wmdp-{rmu_corpus(name)}"


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
    rows = [{"text": text} for text in texts]
    (staging / "data").mkdir()
    write_jsonl(staging / "data" / rmu_file_name(config.name), rows)
    dataset = staging / rmu_dataset_dir(config.name)
    dataset.mkdir(parents=True)
    write_jsonl(dataset / "train.jsonl", rows)
    note = qa_as_text_note("rmu", items, QA_ELSEWHERE)
    where = (
        f"rmu: copy the folder into the WMDP repository's root (cp -r {config.out}/. <wmdp>/) and pass "
        f"--forget_corpora {rmu_corpus(config.name)}: the 2024 rmu/utils.py reads "
        f"data/{rmu_file_name(config.name)}, the current one (which asserts HF_TOKEN is set; any value "
        f"does, a local folder never uses it) the local dataset {rmu_dataset_dir(config.name)}/"
    )
    return Written(notes=[*([note] if note else []), where, rmu_note(texts)])
