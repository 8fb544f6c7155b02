"""`--format hf`: a Parquet file and a `datasets` folder (`load_from_disk`), one column per field."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from biforget.config_sets import ExportConfig
from biforget.formats.base import ExportItem, Written, record_columns


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


def write(staging: Path, items: Sequence[ExportItem], config: ExportConfig) -> Written:
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = record_columns(items)
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
