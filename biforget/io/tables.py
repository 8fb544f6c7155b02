"""CSV rows with the line each starts on, shared by the fact and set readers."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from typing import Any

from biforget.errors import InputError


def csv_rows(
    data: str, source: str, header: Callable[[list[str]], list[str]] | None = None
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Each row of CSV text as a dict, with the line it starts on (quoted fields may span lines).

    `header` receives the column names and returns the ones to use, raising when they do not fit. A row
    with more values than columns and malformed CSV are InputErrors naming the line."""
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
