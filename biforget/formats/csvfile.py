"""`--format csv`: one row a record, the text first, then every field that is a scalar in all rows."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from biforget.config_sets import ExportConfig
from biforget.formats.base import ExportItem, Written, record_columns


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def write(staging: Path, items: Sequence[ExportItem], config: ExportConfig) -> Written:
    columns = [
        key
        for key in record_columns(items)
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
