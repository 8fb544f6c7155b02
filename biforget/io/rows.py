"""Rows of CSV and JSONL text with the line each starts on, shared by the fact and set readers."""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Callable, Iterator
from typing import Any

from biforget.errors import InputError


def allow_long_csv_fields() -> None:
    """Lift the csv module's 131,072-character field limit, which a long document (a chapter, a whole
    article) exceeds. The limit is process-wide, so it is raised here, when CSV is read, and never lowered,
    rather than when biforget is imported."""
    limit = sys.maxsize
    while csv.field_size_limit() < limit:
        try:
            csv.field_size_limit(limit)
        except OverflowError:  # where a C long is 32 bits
            limit //= 2


def csv_rows(
    data: str, source: str, header: Callable[[list[str]], list[str]] | None = None
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Each row of CSV text as a dict, with the line it starts on (quoted fields may span lines).

    `header` receives the column names and returns the ones to use, raising when they do not fit. A row
    with more values than columns and malformed CSV are InputErrors naming the line."""
    allow_long_csv_fields()
    reader = csv.DictReader(io.StringIO(data, newline=""))
    try:
        if header is not None:
            reader.fieldnames = header(list(reader.fieldnames or []))
        row_start = 2
        for row in reader:
            if None in row:
                raise InputError("more values than header columns", source=source, line=row_start)
            yield row_start, {key: value for key, value in row.items() if value is not None}
            row_start = reader.line_num + 1
    except csv.Error as exc:
        raise InputError(f"malformed CSV ({exc})", source=source, line=reader.line_num) from None


def jsonl_rows(data: str, source: str, after: int = 0) -> Iterator[tuple[int, Any]]:
    """Each non-blank line's JSON value with its line number, from line `after + 1` on; a line that
    does not parse is an InputError naming it and the column."""
    for number, line in enumerate(data.split("\n"), start=1):
        if number <= after or not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(
                f"malformed JSON ({exc.msg}, column {exc.colno})", source=source, line=number
            ) from None
