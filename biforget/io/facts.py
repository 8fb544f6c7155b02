"""Facts to rewrite: JSONL, a JSON array or CSV, with `question`+`answer` or `text` (names configurable).

The format is told by the file name (`.csv`, `.json`, `.jsonl`) or, on stdin and for other names, by the
first character: `[` a JSON array, `{` JSONL, anything else CSV with a header row. Every fact keeps the
line it came from, so a bad row is reported as `FILE:LINE: reason`. Fields other than the fact's own pass
through untouched; the configured keys are renamed to `question`, `answer` and `text`, the names every
later stage and exporter reads.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from biforget import console
from biforget.errors import InputError, UsageError
from biforget.io.jsonl import OnError, open_input
from biforget.io.rows import csv_rows, jsonl_rows


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


def _line_of(data: str, offset: int) -> int:
    return data.count("\n", 0, offset) + 1


def _json_array_rows(data: str, source: str) -> Iterator[tuple[int, Any]]:
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
        yield _line_of(data, index), value
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
    keys = keys or FactKeys()
    fmt = fmt or detect_format(source, data)
    rows = {"json": _json_array_rows, "jsonl": jsonl_rows, "csv": csv_rows}[fmt](data, source)
    facts: list[Fact] = []
    skipped = 0
    while True:
        try:
            number, row = next(rows)
        except StopIteration:
            break
        except InputError as exc:
            # A JSON array or CSV that stops parsing cannot be read further; JSONL lines stand alone.
            if on_error == "fail" or fmt != "jsonl":
                raise
            skipped += 1
            console.warn(f"skipped {exc}")
            rows = jsonl_rows(data, source, after=exc.line or 0)
            continue
        try:
            facts.append(to_fact(row, keys, source, number))
        except InputError as exc:
            if on_error == "fail":
                raise
            skipped += 1
            console.warn(f"skipped {exc}")
    if skipped:
        console.warn(f"{source}: skipped {skipped} bad fact(s)")
    return facts


def read_facts(
    path: str | Path | None, keys: FactKeys | None = None, *, on_error: OnError = "fail"
) -> list[Fact]:
    """Facts from `-i FILE`, `-i -` or piped stdin. No input, or an input without facts, is an error."""
    source = open_input(path, on_error=on_error)
    if source.stream is None:
        raise UsageError("no facts on input: pass -i FILE or pipe facts in")
    try:
        raw = source.stream.read()
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", source=source.name) from None
    finally:
        source.close()
    data = _decode(raw, source.name)
    if not data.strip():
        raise InputError("no facts (empty input)", source=source.name)
    facts = parse_facts(data, source.name, keys, on_error=on_error)
    if not facts:
        raise InputError("no usable facts", source=source.name)
    return facts
