"""Forget sets in the layouts downstream unlearning frameworks read (SPEC section 7).

What each framework's own loader does with the files, as read in its code:
- MUSE (muse_bench, baselines/dataset.py) and DUSK (dataset/data_module.py) read a .txt file whole, tokenize
  it as one stream and cut it into fixed-length token windows, so document boundaries never reach training.
  The documents are still written one block each, separated by one blank line (blank lines inside a document
  collapsed), so the file splits back into records exactly. muse_bench also reads a .json list of strings,
  one padded or cut training row per string, and nothing else (no .jsonl).
- DUSK's forget.py reads its forget document from the fixed path data/Prof/Chronological.txt; the export
  carries that file name so it is copied over the benchmark's own.
- open-unlearning loads `datasets.load_dataset(**hf_args)`; `path: json` reads one record per JSONL line,
  whereas `path: text` would train on the raw JSON lines.
- The RMU reference (centerforaisafety/wmdp, rmu/utils.py `get_data`) reads `data/{name}.jsonl`, parses each
  line as JSON only when the name contains `bio-forget-corpus` (otherwise the raw line is the text), keeps
  texts longer than `--min_len` characters (rmu/unlearn.py default 0, so every non-empty text) and batches
  them by `--batch_size` (default 4).

Everything is written into a staging folder beside DIR, then moved into place by rename, so a failure
leaves DIR as it was and no half-written file behind.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
import secrets
import shutil
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from biforget import console
from biforget.config import DEFAULT_EXPORT_KINDS, ExportConfig
from biforget.errors import BiforgetError, InputError, UsageError
from biforget.records import KINDS, Record, qa_text

QA_FORMATS = ("tofu",)
# Formats whose one file holds one record shape: every record question/answer, or every record text.
ONE_SHAPE_FORMATS = ("tofu", "open-unlearning")
# rmu/unlearn.py: --batch_size defaults to 4 and --max_num_batches to 80; the reference Zephyr run
# (run_rmu_zephyr.ipynb) uses 150 batches of 4.
RMU_BATCH = 4
RMU_STEP_BUDGETS = (80, 150)
# DUSK's forget.py trains on this document of data/Prof/ as the forget set (the other four formats retain).
DUSK_FORGET_FILE = "Chronological.txt"
# Below this many tokens DUSK's MIA evaluation gets no prompts from the forget document, and training few
# windows.
DUSK_MIN_TOKENS = 1024
# muse_bench pads or cuts each string of a .json forget file to --max_len tokens; its scripts pass 2048.
MUSE_WINDOW = 2048
# Tokens per whitespace word of English prose under the Llama-family tokenizers these benchmarks use: an
# estimate that keeps the size notes free of a tokenizer (and of torch).
TOKENS_PER_WORD = 4 / 3
# Fields of the record contract, in contract order, ahead of any pass-through field.
CONTRACT_FIELDS = ("id", "kind", "text", "question", "answer", "topic", "parent", "stage", "gen", "scores")

_BLANK_RUN = re.compile(r"\n[ \t]*(?:\n[ \t]*)+")


class ExportError(BiforgetError):
    """The output folder cannot be created or written (exit code 1)."""


@dataclass
class ExportItem:
    """One record kept for export, with where it came from for error messages."""

    record: Record
    where: str

    @property
    def is_qa(self) -> bool:
        return _is_text(self.record.get("question")) and _is_text(self.record.get("answer"))

    @property
    def text(self) -> str:
        """The record as one text; question/answer records read "question answer" (records.qa_text)."""
        if self.is_qa:
            return qa_text(str(self.record["question"]), str(self.record["answer"]))
        return str(self.record["text"])


@dataclass
class ExportResult:
    """What an export wrote: the folder, the files in it (relative paths), records, notes and warnings."""

    out: Path
    format: str
    records: int
    files: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass
class Written:
    """What a writer tells the user: notes (informational) and warnings (the set may not do its job)."""

    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _is_text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def document(text: str) -> str:
    """A text as one blank-line-free block: line ends unified, blank-line runs collapsed to one break."""
    unified = text.replace("\r\n", "\n").replace("\r", "\n").strip()
    return _BLANK_RUN.sub("\n", unified)


# ---- destination checks and atomic commit -------------------------------------------------------------


def check_destination(out: Path, force: bool) -> None:
    """Fail before any input is read: DIR a file, DIR non-empty without --force, or nowhere to write."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out}: exists and is not a folder; --out needs a folder")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise UsageError(f"{out}: folder is not empty; pass --force to write into it")
    ancestor = out.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise ExportError(f"{out}: cannot create the folder: {ancestor} is not a folder")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise ExportError(f"{out}: cannot write: permission denied in {ancestor}")


def _move_into(staging: Path, out: Path) -> None:
    """Move every staged entry into the existing folder `out`, replacing entries of the same name.

    A staged folder (the `datasets` folder, the config tree) replaces its namesake whole: the old one is
    renamed aside first, so the swap is two renames and the old copy is deleted only afterwards.
    """
    for entry in sorted(staging.iterdir()):
        target = out / entry.name
        if entry.is_dir() and target.exists():
            aside = Path(tempfile.mkdtemp(prefix=f".{entry.name}.old-", dir=out))
            os.replace(target, aside / entry.name)
            os.replace(entry, target)
            shutil.rmtree(aside, ignore_errors=True)
        else:
            os.replace(entry, target)


def _stage(out: Path) -> Path:
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        # Not mkdtemp: its 0700 mode would become DIR's mode; os.mkdir honours the umask like any folder.
        staging = out.parent / f".{out.name}.export-{os.getpid()}-{secrets.token_hex(4)}"
        staging.mkdir()
        return staging
    except OSError as exc:
        raise ExportError(f"{out}: cannot create the folder: {exc.strerror or exc}") from None


def _commit(staging: Path, out: Path) -> None:
    if out.is_dir():
        _move_into(staging, out)
        staging.rmdir()
    else:
        os.replace(staging, out)


# ---- reading and filtering ----------------------------------------------------------------------------


def _stage_matches(stage: Any, wanted: Sequence[str]) -> bool:
    if not isinstance(stage, str):
        return False
    return any(stage == name or stage.startswith(f"{name}/") for name in wanted)


def _passes_scores(record: Record, config: ExportConfig) -> bool:
    scores = record.get("scores")
    scores = scores if isinstance(scores, dict) else {}
    for name, threshold in config.min_scores:
        value = scores.get(name)
        if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
            if not config.keep_unscored:
                return False
            continue
        if value < threshold:
            return False
    return True


def keep(record: Record, config: ExportConfig) -> bool:
    """The filters, in order: kinds, stages, minimum scores."""
    kind = record.get("kind")
    if config.kinds is None:
        if kind == "point":
            return False
    elif kind not in config.kinds:
        return False
    if config.stages and not _stage_matches(record.get("stage"), config.stages):
        return False
    return _passes_scores(record, config)


def select(
    records: Iterable[Record],
    config: ExportConfig,
    *,
    where: Callable[[int], str],
    skip_bad: bool = False,
) -> tuple[list[ExportItem], int]:
    """The records the filters keep, and how many were read. `where(n)` names the n-th record (1-based)."""
    kept: list[ExportItem] = []
    read = 0
    for read, record in enumerate(records, start=1):
        item = ExportItem(record, where(read))
        if not item.is_qa and not _is_text(record.get("text")):
            error = InputError(f"{item.where}: record has no 'text' and no 'question'/'answer'")
            if not skip_bad:
                raise error
            console.warn(f"skipped {error}")
            continue
        if keep(record, config):
            kept.append(item)
    return kept, read


def _counts(items: Sequence[ExportItem], key: str) -> dict[str, int]:
    """How many items hold each value of `key` (kinds in contract order, then any other, then none)."""
    found: dict[str, int] = {}
    for item in items:
        value = item.record.get(key)
        name = value if isinstance(value, str) and value else f"no {key}"
        found[name] = found.get(name, 0) + 1
    order = {kind: index for index, kind in enumerate(KINDS)}
    return dict(sorted(found.items(), key=lambda pair: (order.get(pair[0], len(order)), pair[0])))


def _splitting_filter(qa: Sequence[ExportItem], text: Sequence[ExportItem]) -> tuple[str, str] | None:
    """The filter option and its values for each shape, when kinds (else stages) tell the shapes apart.
    Only kinds of the contract count, since --kinds accepts no other."""
    for key, flag in (("kind", "--kinds"), ("stage", "--stages")):
        qa_values, text_values = _counts(qa, key), _counts(text, key)
        values = {*qa_values, *text_values}
        if f"no {key}" in values or set(qa_values) & set(text_values):
            continue
        if key == "kind" and not values <= set(KINDS):
            continue
        return f"{flag} {','.join(qa_values)}", f"{flag} {','.join(text_values)}"
    return None


def _shape_error(items: Sequence[ExportItem], fmt: str) -> InputError | None:
    """Why `items` cannot go into one `fmt` file: a QA format given text-only records, or an
    open-unlearning set of both shapes. Names the counts per kind and the filter that separates them;
    the records are never turned into text behind the user's back."""
    qa = [item for item in items if item.is_qa]
    text = [item for item in items if not item.is_qa]
    needs_qa = fmt in QA_FORMATS
    if not text or (not needs_qa and not qa):
        return None
    text_kinds = ", ".join(f"{count} {kind}" for kind, count in _counts(text, "kind").items())
    split = _splitting_filter(qa, text)
    if needs_qa:
        head = (
            f"--format {fmt} needs question/answer records, but {len(text)} of the {len(items)} records "
            f"kept have no question/answer ({text_kinds}; first: {text[0].where})"
        )
        if not qa:
            return InputError(f"{head}; use a text format (muse, txt, csv, ...)")
        if split is None:
            return InputError(f"{head}; no --kinds or --stages value tells them apart: filter the input")
        return InputError(f"{head}; keep the question/answer ones with {split[0]}")
    head = (
        f"--format open-unlearning writes one record shape per set, but this one holds {len(qa)} "
        f"question/answer record(s) and {len(text)} text-only ({text_kinds}; first: {text[0].where})"
    )
    if split is None:
        return InputError(f"{head}; no --kinds or --stages value tells them apart: filter the input")
    return InputError(
        f"{head}; keep the question/answer ones with {split[0]} (QADataset) or the text with {split[1]} "
        "(PretrainingDataset)"
    )


def _describe_filters(config: ExportConfig) -> str:
    parts = [f"kinds {','.join(config.kinds)}" if config.kinds else f"kinds {','.join(DEFAULT_EXPORT_KINDS)}"]
    if config.stages:
        parts.append(f"stages {','.join(config.stages)}")
    parts.extend(f"{name}>={value:g}" for name, value in config.min_scores)
    return ", ".join(parts)


# ---- writers ------------------------------------------------------------------------------------------


def _write_text(path: Path, text: str) -> None:
    with path.open("w", encoding="utf-8", newline="\n") as handle:
        handle.write(text)


def _write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    _write_text(
        path, "".join(json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n" for row in rows)
    )


def _write_documents(path: Path, items: Sequence[ExportItem]) -> list[str]:
    documents = [document(item.text) for item in items]
    _write_text(path, "\n\n".join(documents) + "\n")
    return documents


def _text_rows(items: Sequence[ExportItem]) -> list[dict[str, Any]]:
    return [{"text": item.text} for item in items]


def _qa_rows(items: Sequence[ExportItem]) -> list[dict[str, Any]]:
    """`{"question","answer"}` rows; export_items has made sure every item is question/answer shaped."""
    return [
        {"question": str(item.record["question"]), "answer": str(item.record["answer"])} for item in items
    ]


def estimated_tokens(text: str) -> int:
    return round(len(text.split()) * TOKENS_PER_WORD)


def _task_ids(items: Sequence[ExportItem]) -> list[Any]:
    """Each record's own `task_id`; without one, the number of its fact group (the record, or its parent)
    in order of first appearance, so a fact and its variants share a task. Mixed types become strings so
    the JSON column has one type."""
    groups: dict[str, int] = {}
    values: list[Any] = []
    for item in items:
        own = item.record.get("task_id")
        if own is not None:
            values.append(own)
            continue
        key = str(item.record.get("parent") or item.record.get("id") or item.where)
        values.append(groups.setdefault(key, len(groups) + 1))
    if len({type(value) for value in values}) > 1:
        values = [str(value) for value in values]
    return values


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


def write_muse(staging: Path, items: Sequence[ExportItem], config: ExportConfig) -> Written:
    """forget.txt for muse_bench's --data_file, and forget.json (a list of strings) for its .json reader."""
    documents = _write_documents(staging / "forget.txt", items)
    _write_text(staging / "forget.json", json.dumps(documents, ensure_ascii=False, indent=1) + "\n")
    return Written(notes=[muse_json_note(documents)])


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


def write_dusk(staging: Path, items: Sequence[ExportItem], config: ExportConfig) -> Written:
    """The forget document under the name DUSK's forget.py reads, with where it goes."""
    documents = _write_documents(staging / DUSK_FORGET_FILE, items)
    warning = dusk_size_warning(documents)
    return Written(
        notes=[
            f"dusk: copy {DUSK_FORGET_FILE} over <DUSK>/data/Prof/{DUSK_FORGET_FILE}, the forget document "
            "forget.py trains on (the other four documents there stay the retain set; DUSK's verbatim and "
            "QA evaluations still read the original document and profiles)"
        ],
        warnings=[warning] if warning else [],
    )


def write_txt(staging: Path, items: Sequence[ExportItem], config: ExportConfig) -> Written:
    _write_documents(staging / "forget.txt", items)
    return Written()


def write_tofu(staging: Path, items: Sequence[ExportItem], config: ExportConfig) -> Written:
    rows = _qa_rows(items)
    if config.task_id:
        for row, task in zip(rows, _task_ids(items), strict=True):
            row["task_id"] = task
    _write_jsonl(staging / "forget.jsonl", rows)
    return Written()


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


def write_rmu(staging: Path, items: Sequence[ExportItem], config: ExportConfig) -> Written:
    texts = [item.text for item in items]
    _write_jsonl(staging / rmu_file_name(config.name), ({"text": text} for text in texts))
    return Written(notes=[rmu_note(texts)])


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _columns(items: Sequence[ExportItem]) -> list[str]:
    seen: dict[str, None] = {}
    for item in items:
        for key in item.record:
            seen.setdefault(key, None)
    # `text` always: a QA record without one still has the text every format writes for it.
    ordered = [key for key in CONTRACT_FIELDS if key in seen or key == "text"]
    return ordered + [key for key in seen if key not in CONTRACT_FIELDS]


def write_csv(staging: Path, items: Sequence[ExportItem], config: ExportConfig) -> Written:
    columns = [
        key
        for key in _columns(items)
        if key != "text" and all(_scalar(item.record.get(key)) for item in items)
    ]
    with (staging / "forget.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", *columns])
        for item in items:
            row = [item.text]
            for key in columns:
                value = item.record.get(key)
                row.append("" if value is None else value)
            writer.writerow(row)
    return Written()


def _column_values(values: list[Any]) -> list[Any]:
    """One Arrow type per column: nested values and mixed scalar types become JSON text."""
    present = [value for value in values if value is not None]
    kinds = {type(value) for value in present}
    if not present or kinds in ({str}, {bool}, {int}, {float}):
        return values
    if kinds == {int, float}:
        return [None if value is None else float(value) for value in values]
    return [
        None if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True) for value in values
    ]


def write_hf(staging: Path, items: Sequence[ExportItem], config: ExportConfig) -> Written:
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = _columns(items)
    data = {key: _column_values([item.record.get(key) for item in items]) for key in columns}
    # The text the other formats write: "question answer" for a QA record, whatever its own `text` says.
    data["text"] = [item.text for item in items]
    table = pa.table(data)
    pq.write_table(table, staging / "forget.parquet")
    from datasets import Dataset
    from datasets.table import InMemoryTable
    from datasets.utils import logging as datasets_logging

    # Progress goes to stderr through our console only; restore the library's setting for callers.
    bars = datasets_logging.is_progress_bar_enabled()
    datasets_logging.disable_progress_bar()
    try:
        Dataset(InMemoryTable(table)).save_to_disk(str(staging / "dataset"))
    finally:
        if bars:
            datasets_logging.enable_progress_bar()
    return Written()


# ---- open-unlearning ----------------------------------------------------------------------------------

# What each benchmark's own unlearning experiment in open-unlearning sets (configs/experiment/unlearn/*/
# default.yaml), minus its forget set: model, trainer, retain set, evaluation and training arguments.
OU_BENCHMARKS: dict[str, dict[str, Any]] = {
    "tofu": {
        "model": "Llama-3.2-1B-Instruct",
        "trainer": "GradAscent",
        "retain": "TOFU_QA_retain",
        "eval": "tofu",
        "settings": {
            "forget_split": "forget10",
            "retain_split": "retain90",
            "holdout_split": "holdout10",
            "retain_logs_path": None,
            "question_key": "question",
        },
        "model_path": "open-unlearning/tofu_Llama-3.2-1B-Instruct_full",
        "retain_hf_args": {"name": "${retain_split}"},
        "eval_args": {
            "forget_split": "${forget_split}",
            "holdout_split": "${holdout_split}",
            "retain_logs_path": "${retain_logs_path}",
            "overwrite": True,
            "question_key": "${question_key}",
        },
        "trainer_args": {
            "warmup_epochs": 1.0,
            "learning_rate": 1e-5,
            "weight_decay": 0.01,
            "num_train_epochs": 10,
        },
        "text_max_length": 512,
    },
    "muse": {
        "model": "Llama-2-7b-hf",
        "trainer": "GradAscent",
        "retain": "MUSE_retain",
        "eval": "muse",
        "settings": {
            "data_split": "News",
            "forget_split": "forget",
            "retain_split": "retain1",
            "retain_logs_path": None,
        },
        "model_path": "muse-bench/MUSE-${data_split}_target",
        # As the framework's own experiment: the retain corpus follows data_split with the model and eval.
        "retain_hf_args": {"path": "muse-bench/MUSE-${data_split}", "split": "${retain_split}"},
        "eval_args": {
            "data_split": "${data_split}",
            "retain_logs_path": "${retain_logs_path}",
            "overwrite": True,
        },
        "trainer_args": {
            "per_device_train_batch_size": 4,
            "gradient_accumulation_steps": 8,
            "learning_rate": 1e-5,
            "num_train_epochs": 10,
            "lr_scheduler_type": "constant",
        },
        "text_max_length": 2048,
    },
    # The experiment open-unlearning added with its WMDP benchmark (PR #104): forget and retain corpora are
    # read from data/wmdp/wmdp-corpora/ (its `setup_data.py --wmdp`), evaluation is lm-eval-harness.
    "wmdp": {
        "model": "zephyr-7b-beta",
        "trainer": "RMU",
        "retain": "WMDP_retain",
        "eval": "lm_eval",
        "settings": {"data_split": "cyber"},
        "model_path": "HuggingFaceH4/zephyr-7b-beta",
        "retain_hf_args": {"data_files": "data/wmdp/wmdp-corpora/${data_split}-retain-corpus.jsonl"},
        "eval_args": {"tasks": ["wmdp_${data_split}", "mmlu"]},
        "collator": {"DataCollatorForSupervisedDataset": {"args": {"padding_side": "left"}}},
        "trainer_args": {
            "per_device_train_batch_size": 1,
            "gradient_accumulation_steps": 16,
            "learning_rate": 5e-5,
            "eval_strategy": "steps",
            "eval_steps": 0.5,
            "max_steps": 80,
            "lr_scheduler_type": "constant",
        },
        "method_args": {
            "gamma": 1.0,
            "steering_coeff": 2,
            "retain_loss_type": "EMBED_DIFF",
            "alpha": 1,
            "module_regex": r"model\.layers\.7",
            "trainable_params_regex": [r"model\.layers\.(5|6|7)\.mlp\.down_proj\.weight"],
        },
        # As open-unlearning's own WMDP_forget dataset config.
        "text_max_length": 512,
    },
}
QA_MAX_LENGTH = 512


def ou_dataset(name: str, data_files: str, qa: bool, benchmark: str) -> dict[str, Any]:
    """The dataset config: one top-level key, the file stem, as in configs/data/datasets/."""
    hf_args = {"path": "json", "data_files": data_files, "split": "train"}
    if qa:
        args: dict[str, Any] = {
            "hf_args": hf_args,
            "question_key": "question",
            "answer_key": "answer",
            "max_length": QA_MAX_LENGTH,
        }
        return {name: {"handler": "QADataset", "args": args}}
    args = {"hf_args": hf_args, "text_key": "text", "max_length": OU_BENCHMARKS[benchmark]["text_max_length"]}
    return {name: {"handler": "PretrainingDataset", "args": args}}


def ou_experiment(name: str, benchmark: str) -> dict[str, Any]:
    """The experiment config: the benchmark's own defaults with the forget set swapped for ours."""
    spec = OU_BENCHMARKS[benchmark]
    experiment: dict[str, Any] = {
        "defaults": [
            {"override /model": spec["model"]},
            {"override /trainer": spec["trainer"]},
            {"override /data": "unlearn"},
            {"override /data/datasets@data.forget": name},
            {"override /data/datasets@data.retain": spec["retain"]},
            {"override /eval": spec["eval"]},
        ],
        **spec["settings"],
        "model": {"model_args": {"pretrained_model_name_or_path": spec["model_path"]}},
        "data": {
            "anchor": "forget",
            "retain": {spec["retain"]: {"args": {"hf_args": dict(spec["retain_hf_args"])}}},
        },
        "eval": {spec["eval"]: dict(spec["eval_args"])},
    }
    if "collator" in spec:
        experiment["collator"] = spec["collator"]
    experiment["trainer"] = {"args": dict(spec["trainer_args"])}
    if "method_args" in spec:
        experiment["trainer"]["method_args"] = dict(spec["method_args"])
    experiment["task_name"] = f"{name}_{benchmark}"
    return experiment


def ou_paths(name: str, benchmark: str) -> tuple[str, str]:
    return f"configs/data/datasets/{name}.yaml", f"configs/experiment/unlearn/{benchmark}/{name}.yaml"


def _dump_yaml(path: Path, value: dict[str, Any], header: str = "") -> None:
    import yaml

    path.parent.mkdir(parents=True, exist_ok=True)
    _write_text(path, header + yaml.safe_dump(value, sort_keys=False, allow_unicode=True, width=1000))


def _ou_readme(name: str, benchmark: str, qa: bool, data_files: str, count: int) -> str:
    dataset_path, experiment_path = ou_paths(name, benchmark)
    handler = "QADataset (question/answer)" if qa else "PretrainingDataset (text)"
    extra = ""
    if benchmark == "muse":
        extra = """
`data_split` (default `News`) picks the MUSE corpus for the model (`muse-bench/MUSE-${data_split}_target`),
the retain set (`muse-bench/MUSE-${data_split}`, split `${retain_split}`) and the evaluation together, as
the framework's own MUSE experiment does: pass `data_split=Books` for MUSE-Books.
"""
    if benchmark == "wmdp":
        extra = """
The retain corpus is read from `data/wmdp/wmdp-corpora/${data_split}-retain-corpus.jsonl` under the
framework's root (`python setup_data.py --wmdp` there fetches it); `data_split=bio` switches the retain
corpus and the lm-eval task to the bio ones. The experiment pins RMU's `trainer.method_args` as the
benchmark does: delete them before switching to another trainer.
"""
    return f"""# {name}: a forget set for open-unlearning

Written by `biforget export --format open-unlearning`: {count} record(s), {handler}, benchmark {benchmark}.

| file | goes to |
|---|---|
| `forget.jsonl` | stays here; `{dataset_path}` reads it from `{data_files}` |
| `{dataset_path}` | `<open-unlearning>/{dataset_path}` |
| `{experiment_path}` | `<open-unlearning>/{experiment_path}` |

Copy the config tree into the framework, then run the experiment from its root:

```bash
cp -r configs/. <open-unlearning>/configs/
python src/train.py --config-name=unlearn.yaml \\
    experiment=unlearn/{benchmark}/{name} task_name={name}_{benchmark}
```

The experiment keeps the benchmark's retain set, model and evaluation and only swaps the forget set;
override any of them on the command line (e.g. `trainer=NPO`). If you move `forget.jsonl`, edit
`data_files` in `{dataset_path}`.
{extra}"""


def write_open_unlearning(staging: Path, items: Sequence[ExportItem], config: ExportConfig) -> Written:
    # One shape, as export_items has checked: QA sets go to QADataset, text sets to PretrainingDataset.
    qa = items[0].is_qa
    benchmark = config.benchmark or ("tofu" if qa else "muse")
    notes = []
    if config.benchmark is None:
        shape = "question/answer" if qa else "text"
        notes.append(f"open-unlearning: benchmark {benchmark}, as the set is {shape} (--benchmark overrides)")
    _write_jsonl(staging / "forget.jsonl", _qa_rows(items) if qa else _text_rows(items))
    data_files = config.data_path or str((config.out / "forget.jsonl").resolve())
    dataset_path, experiment_path = ou_paths(config.name, benchmark)
    _dump_yaml(staging / dataset_path, ou_dataset(config.name, data_files, qa, benchmark))
    _dump_yaml(
        staging / experiment_path, ou_experiment(config.name, benchmark), header="# @package _global_\n"
    )
    _write_text(staging / "README.md", _ou_readme(config.name, benchmark, qa, data_files, len(items)))
    return Written(notes=notes)


WRITERS: dict[str, Callable[[Path, Sequence[ExportItem], ExportConfig], Written]] = {
    "muse": write_muse,
    "open-unlearning": write_open_unlearning,
    "rmu": write_rmu,
    "dusk": write_dusk,
    "tofu": write_tofu,
    "hf": write_hf,
    "csv": write_csv,
    "txt": write_txt,
}


def _files(root: Path) -> list[str]:
    found = []
    for path in sorted(root.rglob("*")):
        if path.is_file():
            relative = path.relative_to(root)
            # The datasets folder is one output; list it once, not file by file.
            if relative.parts[0] == "dataset":
                if "dataset/" not in found:
                    found.append("dataset/")
                continue
            found.append(str(relative))
    return found


def export_items(items: Sequence[ExportItem], config: ExportConfig) -> ExportResult:
    """Write `items` in `config.format` into `config.out`, all or nothing."""
    if config.format in ONE_SHAPE_FORMATS:
        error = _shape_error(items, config.format)
        if error is not None:
            raise error  # before anything is written
    check_destination(config.out, config.force)
    staging = _stage(config.out)
    try:
        written = WRITERS[config.format](staging, items, config)
        files = _files(staging)
        _commit(staging, config.out)
    except OSError as exc:
        raise ExportError(f"{config.out}: cannot write: {exc.strerror or exc}") from None
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    for warning in written.warnings:
        console.warn(warning)
    return ExportResult(config.out, config.format, len(items), files, written.notes, written.warnings)


def no_records_message(read: int, config: ExportConfig) -> str:
    if not read:
        return "no records (empty input)"
    return f"no records left after the filters ({_describe_filters(config)}) out of {read} read"
