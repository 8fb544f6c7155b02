"""`export`: which records go into a forget set, whether the format can hold them, and the write.

The filters (kinds, stages, minimum scores) pick the records; a format that holds one record shape
refuses a set of the wrong or mixed shapes with the filter that would separate them; the format's own
module (biforget/formats/) then writes into a staging folder that biforget/io/export.py moves into place.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from biforget import console
from biforget.config import DEFAULT_EXPORT_KINDS, ExportConfig
from biforget.errors import InputError
from biforget.formats import load_format, shape
from biforget.formats.base import ExportItem, is_text
from biforget.io.export import write_staged
from biforget.records import KINDS, Record


@dataclass
class ExportResult:
    """What an export wrote: the folder, the files in it (relative paths), records, notes and warnings."""

    out: Path
    format: str
    records: int
    files: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


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
        if not item.is_qa and not is_text(record.get("text")):
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
    needs_qa = shape(fmt) == "qa"
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


def export_items(items: Sequence[ExportItem], config: ExportConfig) -> ExportResult:
    """Write `items` in `config.format` into `config.out`, all or nothing."""
    if shape(config.format) != "any":
        error = _shape_error(items, config.format)
        if error is not None:
            raise error  # before anything is written
    writer = load_format(config.format)
    written, files = write_staged(
        config.out, config.force, lambda staging: writer.write(staging, items, config)
    )
    for warning in written.warnings:
        console.warn(warning)
    return ExportResult(config.out, config.format, len(items), files, written.notes, written.warnings)


def no_records_message(read: int, config: ExportConfig) -> str:
    if not read:
        return "no records (empty input)"
    return f"no records left after the filters ({_describe_filters(config)}) out of {read} read"
