"""`--format tofu`: question/answer rows as TOFU's forget splits hold them, task ids on request."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from biforget.config_sets import ExportConfig
from biforget.formats.base import ExportItem, Written, qa_rows, write_jsonl

# TOFU reads question/answer rows only.
SHAPE = "qa"


def _task_ids(items: Sequence[ExportItem]) -> list[Any]:
    """Each record's own `task_id`; without one, its parent's, else a number for its fact group (the
    record, or its parent) in order of first appearance, so a fact and its variants share a task. The
    numbers skip every `task_id` the input holds, so two groups never share an id. Mixed types become
    strings so the JSON column has one type."""
    taken = {str(own) for item in items if (own := item.record.get("task_id")) is not None}
    # A record without one joins its parent's task when the parent has one.
    groups: dict[str, Any] = {
        str(item.record["id"]): item.record["task_id"]
        for item in items
        if item.record.get("id") and item.record.get("task_id") is not None
    }
    values: list[Any] = []
    number = 0
    for item in items:
        own = item.record.get("task_id")
        if own is not None:
            values.append(own)
            continue
        key = str(item.record.get("parent") or item.record.get("id") or item.where)
        if key not in groups:
            number += 1
            while str(number) in taken:
                number += 1
            groups[key] = number
        values.append(groups[key])
    if len({type(value) for value in values}) > 1:
        values = [str(value) for value in values]
    return values


def write(staging: Path, items: Sequence[ExportItem], config: ExportConfig) -> Written:
    rows = qa_rows(items)
    if config.task_id:
        for row, task in zip(rows, _task_ids(items), strict=True):
            row["task_id"] = task
    write_jsonl(staging / "forget.jsonl", rows)
    return Written()
