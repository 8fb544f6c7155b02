"""Sets to evaluate: biforget JSONL, plain text, CSV with a `text` column, or a JSON array.

The format is told by the file name: `.jsonl`/`.ndjson` JSONL, `.json` a JSON array (or JSONL when the
file does not start with `[`), `.csv` CSV with a header row; anything else is plain text, one document per
paragraph (paragraphs separated by blank lines), or one per line with `lines=True`. A record with a
`question` and an `answer` counts as `question + " " + answer`, the text every stage builds for QA
records; any other record needs a `text`. A bad line or row is an InputError naming `FILE:LINE`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, NamedTuple

from biforget import console
from biforget.errors import InputError
from biforget.io.rows import csv_rows, json_array_rows, jsonl_rows
from biforget.records import Record, qa_text

_BLANK_LINE = re.compile(r"\n[ \t]*\n")
JSONL_SUFFIXES = (".jsonl", ".ndjson")


@dataclass
class EvalSet:
    """One set as read: its name, where it came from, one text per record, and the records themselves.

    `records` holds the parsed objects for structured inputs (so `--drop-overlap` can write them back
    unchanged) and `{"text": ...}` for plain text; `topics` the distinct `topic` fields seen.
    """

    name: str
    path: Path
    texts: list[str]
    records: list[Record]
    format: str
    topics: set[str] = field(default_factory=set)

    def __len__(self) -> int:
        return len(self.texts)


def read_text_file(path: Path, what: str = "a text set") -> str:
    """A UTF-8 file's text (BOM dropped, CRLF as LF); unreadable, binary or undecodable files are
    InputErrors naming the file and, where there is one, the line."""
    if path.is_dir():
        raise InputError("is a directory, not a file", source=str(path))
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputError("no such file", source=str(path)) from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", source=str(path)) from None
    if b"\x00" in raw:
        line = raw[: raw.index(b"\x00")].count(b"\n") + 1
        raise InputError(f"binary data (NUL byte), not {what}", source=str(path), line=line)
    try:
        return raw.decode("utf-8").removeprefix("\ufeff").replace("\r\n", "\n")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise InputError("not UTF-8 text", source=str(path), line=line) from None


def _record_text(value: Any, source: str, line: int) -> tuple[str, Record]:
    """The text a record counts as, and the record as a dict (a bare string becomes `{"text": ...}`)."""
    if isinstance(value, str):
        if not value.strip():
            raise InputError("empty text", source=source, line=line)
        return value.strip(), {"text": value}
    if not isinstance(value, dict):
        raise InputError(
            f"expected an object or a string, got {type(value).__name__}", source=source, line=line
        )
    question, answer, text = (value.get(key) for key in ("question", "answer", "text"))
    if isinstance(question, str) and isinstance(answer, str) and question.strip() and answer.strip():
        return qa_text(question, answer), value
    if isinstance(text, str) and text.strip():
        return text.strip(), value
    raise InputError("record has no 'text' field (nor 'question' and 'answer')", source=source, line=line)


def _csv_rows(data: str, source: str) -> Iterator[tuple[int, Any]]:
    def set_columns(names: list[str]) -> list[str]:
        """Column names stripped; a set needs `text` or both `question` and `answer`."""
        columns = [name.strip() for name in names]
        if "text" not in columns and not {"question", "answer"} <= set(columns):
            shown = ", ".join(repr(c) for c in columns) or "none"
            raise InputError(f"CSV has no 'text' column (columns: {shown})", source=source)
        return columns

    return csv_rows(data, source, set_columns)


def detect_set_format(path: Path, data: str) -> str:
    suffix = path.suffix.lower()
    if suffix in JSONL_SUFFIXES:
        return "jsonl"
    if suffix == ".json":
        return "json" if data.lstrip().startswith("[") else "jsonl"
    if suffix == ".csv":
        return "csv"
    return "text"


def _plain_documents(data: str, lines: bool) -> list[str]:
    parts = data.splitlines() if lines else _BLANK_LINE.split(data)
    return [" ".join(part.split()) for part in parts if part.strip()]


def _open(path: Path) -> IO[bytes]:
    if path.is_dir():
        raise InputError("is a directory, not a file", source=str(path))
    try:
        return path.open("rb")
    except FileNotFoundError:
        raise InputError("no such file", source=str(path)) from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", source=str(path)) from None


def read_set(path: Path, *, name: str | None = None, lines: bool = False) -> EvalSet:
    """Read one set; an empty set, or one without usable text, is an InputError naming the file.

    JSONL files are read a bounded line at a time (a line over the record limit is an error naming it);
    the other formats are documents read whole."""
    source = str(path)
    label = name or path.stem
    if path.suffix.lower() in JSONL_SUFFIXES:
        with _open(path) as stream:
            return _structured(label, path, "jsonl", jsonl_rows(stream, source))
    data = read_text_file(path)
    fmt = detect_set_format(path, data)
    if not data.strip():
        raise InputError("empty set (no records)", source=source)
    if fmt == "text":
        documents = _plain_documents(data, lines)
        if not lines and len(documents) == 1 and data.strip().count("\n") >= 3:
            console.warn(
                f"{source}: no blank line, so the whole file is one document; --lines reads one "
                "document per line"
            )
        return EvalSet(label, path, documents, [{"text": t} for t in documents], fmt)
    rows = {"jsonl": jsonl_rows, "json": json_array_rows, "csv": _csv_rows}[fmt](data, source)
    return _structured(label, path, fmt, rows)


def _structured(label: str, path: Path, fmt: str, rows: Iterable[tuple[int, Any]]) -> EvalSet:
    source = str(path)
    texts: list[str] = []
    records: list[Record] = []
    topics: set[str] = set()
    for number, row in rows:
        text, record = _record_text(row, source, number)
        texts.append(text)
        records.append(record)
        topic = record.get("topic")
        if isinstance(topic, str) and topic.strip():
            topics.add(topic.strip())
    if not texts:
        raise InputError("empty set (no records)", source=source)
    return EvalSet(label, path, texts, records, fmt, topics)


class TracePoint(NamedTuple):
    """One check of a `synthesize --trace` file: accepted samples, diversity, and (from traces that
    carry them) the novelty rate over the last window of offers and the offers made so far."""

    samples: int
    diversity: float
    novelty: float | None = None
    offers: int | None = None


def read_trace(path: Path) -> list[TracePoint]:
    """The `{"samples", "diversity"[, "novelty", "offers"]}` lines `synthesize --trace` writes, in order."""
    source = str(path)
    curve: list[TracePoint] = []
    with _open(path) as stream:
        rows = list(jsonl_rows(stream, source))
    for number, row in rows:
        values = row if isinstance(row, dict) else {}
        samples, diversity = values.get("samples"), values.get("diversity")
        novelty, offers = values.get("novelty"), values.get("offers")
        if (
            not isinstance(samples, int)
            or not isinstance(diversity, int | float)
            or not (novelty is None or isinstance(novelty, int | float))
            or not (offers is None or isinstance(offers, int))
        ):
            raise InputError(
                'expected {"samples": N, "diversity": D, "novelty": R or null, "offers": M}',
                source=source,
                line=number,
            )
        curve.append(
            TracePoint(samples, float(diversity), float(novelty) if novelty is not None else None, offers)
        )
    if not curve:
        raise InputError("empty trace (no points)", source=source)
    return curve
