"""Rows of CSV, JSONL and JSON-array text with the line each starts on, shared by the fact and set
readers. JSONL is read line by line through the record reader's bounded lines, so a line over
`MAX_LINE_BYTES` is one bad line, never held whole."""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Callable, Iterator
from typing import IO, Any

from biforget.errors import InputError
from biforget.io.jsonl import (
    MAX_LINE_BYTES,
    bounded_lines,
    check_text_value,
    decode_line,
    line_too_long,
    loads_value,
)


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
            size = sum(len(value.encode("utf-8")) for value in row.values() if isinstance(value, str))
            if size > MAX_LINE_BYTES:  # the bound a JSONL line has holds for a CSV row too
                raise line_too_long(size, MAX_LINE_BYTES, source, row_start, "row")
            yield row_start, {key: value for key, value in row.items() if value is not None}
            row_start = reader.line_num + 1
    except csv.Error as exc:
        raise InputError(f"malformed CSV ({exc})", source=source, line=reader.line_num) from None


def jsonl_values(
    data: str | IO[bytes], source: str, max_line_bytes: int = MAX_LINE_BYTES
) -> Iterator[tuple[int, Any | InputError]]:
    """Each non-blank line's JSON value with its line number, or the InputError that line is (too
    long, not UTF-8 text, malformed JSON), so a caller may skip it and read on. `data` is the text or a
    byte stream read a bounded line at a time."""
    stream = io.BytesIO(data.encode("utf-8")) if isinstance(data, str) else data
    for number, (raw, size) in enumerate(bounded_lines(stream, max_line_bytes), start=1):
        if size > max_line_bytes:
            yield number, line_too_long(size, max_line_bytes, source, number)
            continue
        try:
            line = decode_line(raw, source, number)
        except InputError as exc:
            yield number, exc
            continue
        if not line.strip():
            continue
        try:
            value = loads_value(line, source, number)
        except InputError as exc:
            yield number, exc
            continue
        yield number, value


def jsonl_rows(data: str | IO[bytes], source: str) -> Iterator[tuple[int, Any]]:
    """Each non-blank line's JSON value with its line number; the first bad line is raised."""
    for number, value in jsonl_values(data, source):
        if isinstance(value, InputError):
            raise value
        yield number, value


def _line_of(data: str, offset: int) -> int:
    return data.count("\n", 0, offset) + 1


def json_array_rows(data: str, source: str) -> Iterator[tuple[int, Any]]:
    """The elements of a JSON array, each with the line it starts on."""
    decoder = json.JSONDecoder()
    index = data.index("[") + 1
    length = len(data)

    def skip_space(position: int) -> int:
        while position < length and data[position] in " \t\r\n":
            position += 1
        return position

    index = skip_space(index)
    if index < length and data[index] == "]":
        return
    while True:
        index = skip_space(index)
        try:
            value, end = decoder.raw_decode(data, index)
        except json.JSONDecodeError as exc:
            raise InputError(
                f"malformed JSON ({exc.msg})", source=source, line=_line_of(data, exc.pos)
            ) from None
        except RecursionError:
            raise InputError(
                "JSON nested too deeply to be a record", source=source, line=_line_of(data, index)
            ) from None
        line = _line_of(data, index)
        size = len(data[index:end].encode("utf-8"))
        if size > MAX_LINE_BYTES:  # the bound a JSONL line has holds for an element of an array too
            raise line_too_long(size, MAX_LINE_BYTES, source, line, "element")
        yield line, check_text_value(value, data[index:end], source, line)
        index = skip_space(end)
        if index < length and data[index] == ",":
            index += 1
            continue
        if index < length and data[index] == "]":
            trailing = skip_space(index + 1)
            if trailing < length:
                raise InputError(
                    "text after the end of the JSON array", source=source, line=_line_of(data, trailing)
                )
            return
        raise InputError(
            "malformed JSON array (expected ',' or ']')", source=source, line=_line_of(data, index)
        )
