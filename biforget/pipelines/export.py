"""`export`: which records go into a forget set, whether the format can hold them, and the write.

The filters (kinds, stages, shape, minimum scores) pick the records, and every record they leave out is
counted by filter; a question/answer-only format refuses text records and names `--shape qa`; text
formats write question/answer records as "question answer" and say so. The format's own module
(biforget/formats/) writes into a staging folder that biforget/io/export.py moves into place.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from biforget import console
from biforget.config import ExportConfig
from biforget.errors import InputError
from biforget.formats import load_format, shape
from biforget.formats.base import ExportItem, is_qa, is_text
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


def _kinds_label(config: ExportConfig) -> str:
    if config.kinds is None:
        return "--kinds (default: all but point)"
    return f"--kinds {','.join(config.kinds)}"


def _min_score_label(config: ExportConfig) -> str:
    scores = " ".join(f"{name}>={value:g}" for name, value in config.min_scores)
    return f"--min-score {scores}" + (" (unscored kept)" if config.keep_unscored else " (unscored left out)")


def dropped_by(record: Record, config: ExportConfig) -> str | None:
    """The first filter that leaves `record` out, named as the user sets it, or None to keep it.
    The filters, in order: kinds, stages, shape, minimum scores."""
    kind = record.get("kind")
    if (kind == "point") if config.kinds is None else (kind not in config.kinds):
        return _kinds_label(config)
    if config.stages and not _stage_matches(record.get("stage"), config.stages):
        return f"--stages {','.join(config.stages)}"
    if config.shape is not None and is_qa(record) != (config.shape == "qa"):
        return f"--shape {config.shape}"
    if not _passes_scores(record, config):
        return _min_score_label(config)
    return None


# Why a record skipped under --on-error skip is left out.
UNREADABLE = "--on-error skip (no 'text' and no 'question'/'answer')"


# The order the reasons are given in: the order the records meet them.
_REASON_ORDER = ("--on-error", "--kinds", "--stages", "--shape", "--min-score")


@dataclass
class Selection:
    """The records the filters keep, how many were read, and how many each filter left out."""

    items: list[ExportItem]
    read: int = 0
    dropped: dict[str, int] = field(default_factory=dict)

    def _reasons(self) -> list[tuple[str, int]]:
        return sorted(self.dropped.items(), key=lambda pair: _REASON_ORDER.index(pair[0].split()[0]))

    def dropped_note(self) -> str | None:
        """One line: how many records were left out, by which filter; None when none was."""
        if not self.dropped:
            return None
        total = sum(self.dropped.values())
        reasons = ", ".join(f"{count} by {label}" for label, count in self._reasons())
        return f"left out {total} of {self.read} record(s): {reasons}"

    def empty_message(self) -> str:
        """Why nothing is left to export: an empty input, or the filters that left every record out."""
        if not self.read:
            return "no records (empty input)"
        reasons = ", ".join(f"{label} left out {count}" for label, count in self._reasons())
        return f"no records left after the filters out of {self.read} read: {reasons}"


def select(
    records: Iterable[Record],
    config: ExportConfig,
    *,
    where: Callable[[int], str],
    skip_bad: bool = False,
) -> Selection:
    """The records the filters keep, and how many each filter left out. `where(n)` names the n-th
    record (1-based)."""
    selection = Selection([])
    for read, record in enumerate(records, start=1):
        selection.read = read
        item = ExportItem(record, where(read))
        reason: str | None
        if not item.is_qa and not is_text(record.get("text")):
            error = InputError(f"{item.where}: record has no 'text' and no 'question'/'answer'")
            if not skip_bad:
                raise error
            console.warn(f"skipped {error}")
            reason = UNREADABLE
        else:
            reason = dropped_by(record, config)
        if reason is None:
            selection.items.append(item)
        else:
            selection.dropped[reason] = selection.dropped.get(reason, 0) + 1
    return selection


def _counts(items: Sequence[ExportItem], key: str) -> dict[str, int]:
    """How many items hold each value of `key` (kinds in contract order, then any other, then none)."""
    found: dict[str, int] = {}
    for item in items:
        value = item.record.get(key)
        name = value if isinstance(value, str) and value else f"no {key}"
        found[name] = found.get(name, 0) + 1
    order = {kind: index for index, kind in enumerate(KINDS)}
    return dict(sorted(found.items(), key=lambda pair: (order.get(pair[0], len(order)), pair[0])))


def _shape_error(items: Sequence[ExportItem], fmt: str) -> InputError | None:
    """Why `items` cannot go into a question/answer-only format: some have no question/answer. Names
    their counts per kind and the filter that keeps the others, `--shape qa`."""
    text = [item for item in items if not item.is_qa]
    if not text:
        return None
    text_kinds = ", ".join(f"{count} {kind}" for kind, count in _counts(text, "kind").items())
    head = (
        f"--format {fmt} needs question/answer records, but {len(text)} of the {len(items)} records "
        f"kept have no question/answer ({text_kinds}; first: {text[0].where})"
    )
    if len(text) == len(items):
        return InputError(f"{head}; use a text format (muse, txt, csv, ...)")
    return InputError(f"{head}; keep the {len(items) - len(text)} question/answer ones with --shape qa")


def export_items(items: Sequence[ExportItem], config: ExportConfig) -> ExportResult:
    """Write `items` in `config.format` into `config.out`, all or nothing."""
    if shape(config.format) == "qa":
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
