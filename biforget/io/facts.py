"""Facts to rewrite: JSONL, a JSON array or CSV, with `question`+`answer` or `text` (names configurable).

The format is told by the file name (`.csv`, `.json`, `.jsonl`) or, on stdin and for other names, by the
first character: `[` a JSON array, `{` JSONL, anything else CSV with a header row. Every fact keeps the
line it came from, so a bad row is reported as `FILE:LINE: reason`. Fields other than the fact's own pass
through untouched; the configured keys are renamed to `question`, `answer` and `text`, the names every
later stage and exporter reads.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from biforget import console
from biforget.errors import InputError, UsageError
from biforget.io.jsonl import OnError, open_input
from biforget.io.rows import csv_rows, json_array_rows, jsonl_values


@dataclass(frozen=True)
class FactKeys:
    """Which input fields hold the fact."""

    question: str = "question"
    answer: str = "answer"
    text: str = "text"

    def __post_init__(self) -> None:
        names = (self.question, self.answer, self.text)
        if any(not name.strip() for name in names):
            raise UsageError("--question-key, --answer-key and --text-key must not be empty")
        if len(set(names)) != 3:
            raise UsageError("--question-key, --answer-key and --text-key must name three different fields")


@dataclass(frozen=True)
class Fact:
    """One fact as read: question and answer, or text; the other fields; where it came from."""

    question: str | None
    answer: str | None
    text: str | None
    extra: dict[str, Any] = field(default_factory=dict)
    source: str = ""
    line: int = 0

    @property
    def is_qa(self) -> bool:
        return self.question is not None and self.answer is not None


def _string(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def to_fact(row: Any, keys: FactKeys, source: str, line: int) -> Fact:
    """Check one parsed row and turn it into a Fact, or raise InputError naming the line."""
    if not isinstance(row, dict):
        raise InputError(f"expected an object, got {type(row).__name__}", source=source, line=line)
    question, answer, text = (_string(row.get(key)) for key in (keys.question, keys.answer, keys.text))
    extra = {k: v for k, v in row.items() if k not in (keys.question, keys.answer, keys.text)}
    if question and answer:
        # A QA fact's text is rebuilt from its fields; a stale `text` beside them would disagree.
        return Fact(question, answer, None, extra, source, line)
    if question or answer:
        present, absent = (keys.question, keys.answer) if question else (keys.answer, keys.question)
        raise InputError(f"fact has {present!r} but no {absent!r}", source=source, line=line)
    if text:
        return Fact(None, None, text, extra, source, line)
    raise InputError(
        f"fact has neither {keys.text!r} nor {keys.question!r}/{keys.answer!r}", source=source, line=line
    )


def detect_format(name: str, data: str) -> str:
    """`json`, `jsonl` or `csv`: from the file name when it says, else from the first character."""
    suffix = Path(name).suffix.lower()
    if suffix in (".csv", ".tsv"):
        return "csv"
    first = data.lstrip()[:1]
    if first == "[":
        return "json"
    if first == "{" or suffix in (".jsonl", ".json", ".ndjson"):
        return "jsonl"
    return "csv"


def _decode(raw: bytes, source: str) -> str:
    if b"\x00" in raw:
        line = raw[: raw.index(b"\x00")].count(b"\n") + 1
        raise InputError("binary data (NUL byte), not a facts file", source=source, line=line)
    try:
        return raw.decode("utf-8").removeprefix("\ufeff").replace("\r\n", "\n")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise InputError("not UTF-8 text", source=source, line=line) from None


def parse_facts(
    data: str,
    source: str,
    keys: FactKeys | None = None,
    *,
    on_error: OnError = "fail",
    fmt: str | None = None,
) -> list[Fact]:
    """Every fact in `data`; bad rows raise InputError or, with `on_error="skip"`, are counted and skipped."""
    fmt = fmt or detect_format(source, data)
    if fmt == "jsonl":
        return _facts(jsonl_values(data, source), source, keys, on_error)
    rows = json_array_rows(data, source) if fmt == "json" else csv_rows(data, source)
    # A JSON array or CSV that stops parsing cannot be read further, so its errors always stop the run.
    return _facts(rows, source, keys, on_error)


def _facts(
    rows: Iterable[tuple[int, Any]], source: str, keys: FactKeys | None, on_error: OnError
) -> list[Fact]:
    """The facts of parsed rows; a row that is an InputError (a bad JSONL line) or does not make a fact
    stops the run or, with `on_error="skip"`, is counted and skipped."""
    keys = keys or FactKeys()
    facts: list[Fact] = []
    skipped = 0
    for number, row in rows:
        try:
            if isinstance(row, InputError):
                raise row
            facts.append(to_fact(row, keys, source, number))
        except InputError as exc:
            if on_error == "fail":
                raise
            skipped += 1
            console.warn(f"skipped {exc}")
    if skipped:
        console.warn(f"{source}: skipped {skipped} bad fact(s)")
    return facts


# Enough of the input to tell its format by its first character, past a BOM and leading blank lines.
_PEEK_BYTES = 4096


def _starts_jsonl(name: str, stream: IO[bytes]) -> bool:
    """Whether the input is JSONL, told without reading it: by its name, else its first character."""
    peek = getattr(stream, "peek", None)
    head = peek(_PEEK_BYTES)[:_PEEK_BYTES] if peek is not None else b""
    text = head.decode("utf-8", errors="ignore").removeprefix("\ufeff")
    return detect_format(name, text) == "jsonl"


def read_facts(
    path: str | Path | None, keys: FactKeys | None = None, *, on_error: OnError = "fail"
) -> list[Fact]:
    """Facts from `-i FILE`, `-i -` or piped stdin. No input, or an input without facts, is an error.

    JSONL is read a bounded line at a time, so an overlong line is one bad fact; a JSON array or CSV is
    read whole, as a document that only parses whole."""
    source = open_input(path, on_error=on_error)
    if source.stream is None:
        raise UsageError("no facts on input: pass -i FILE or pipe facts in")
    try:
        if _starts_jsonl(source.name, source.stream):
            rows = list(jsonl_values(source.stream, source.name))
            if not rows:
                raise InputError("no facts (empty input)", source=source.name)
            facts = _facts(rows, source.name, keys, on_error)
        else:
            data = _decode(source.stream.read(), source.name)
            if not data.strip():
                raise InputError("no facts (empty input)", source=source.name)
            facts = parse_facts(data, source.name, keys, on_error=on_error)
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", source=source.name) from None
    finally:
        source.close()
    if not facts:
        raise InputError("no usable facts", source=source.name)
    return facts
