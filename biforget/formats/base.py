"""What every export format shares: the records kept for export, what a writer reports, and the
text, rows and columns the formats derive from records.

A format is one module under biforget/formats/ with `write(staging, items, config) -> Written`, and
optionally `SHAPE` ("qa": every record must be question/answer; default "any"), plus one line in
`FORMATS` (biforget/formats/__init__.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from biforget import console
from biforget.io.export import write_text
from biforget.io.jsonl import RecordWriter
from biforget.records import Record, qa_text

# Tokens per whitespace word of English prose under the Llama-family tokenizers these benchmarks use: an
# estimate that keeps the size notes free of a tokenizer (and of torch).
TOKENS_PER_WORD = 4 / 3


# Fields of the record contract, in contract order, ahead of any pass-through field.
CONTRACT_FIELDS = ("id", "kind", "text", "question", "answer", "topic", "parent", "stage", "gen", "scores")


# Every character str.splitlines() breaks a line at. A reader may split a file into lines with any of
# them, and take a line of nothing but whitespace (NBSP, ideographic space, ...) for a blank one.
_LINE_BREAKS = re.compile(r"\r\n|[\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]")


@dataclass
class ExportItem:
    """One record kept for export, with where it came from for error messages."""

    record: Record
    where: str

    @property
    def is_qa(self) -> bool:
        return is_qa(self.record)

    @property
    def text(self) -> str:
        """The record as one text; question/answer records read "question answer" (records.qa_text)."""
        if self.is_qa:
            return qa_text(str(self.record["question"]), str(self.record["answer"]))
        return str(self.record["text"])


@dataclass
class Written:
    """What a writer tells the user: notes (informational) and warnings (the set may not do its job)."""

    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def is_text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def is_qa(record: Record) -> bool:
    """A question/answer record: both fields hold text."""
    return is_text(record.get("question")) and is_text(record.get("answer"))


def document(text: str) -> str:
    """A text as one block with no blank line, for a reader that splits documents on blank lines: every
    line break becomes "\n" and every line holding only whitespace (of any kind) is dropped."""
    lines = _LINE_BREAKS.split(text)
    return "\n".join(line for line in lines if line.strip()).strip()


def qa_as_text_note(fmt: str, items: Sequence[ExportItem], alternative: str) -> str | None:
    """The one line saying that question/answer records went in as text, with the counts and
    `alternative` (how to keep them question/answer); None when there are none."""
    qa = sum(item.is_qa for item in items)
    if not qa:
        return None
    text = len(items) - qa
    beside = f" beside {text} text record(s)" if text else ""
    return f'{fmt}: {qa} question/answer record(s) written as text ("question answer"){beside}; {alternative}'


# What a text format's note offers for question/answer records.
QA_ELSEWHERE = "for a QA experiment export them with --shape qa --format tofu (or open-unlearning)"


def write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    """One compact JSON object a line, written by the same writer as every record stream."""
    with RecordWriter(path, make_parents=False) as writer:
        writer.write_all(rows)


# C0 controls but tab and line ends, and DEL: a plain-text reader takes NUL for binary data, and ESC
# sequences would drive a terminal that shows the file.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def write_documents(path: Path, items: Sequence[ExportItem]) -> list[str]:
    documents = [document(item.text) for item in items]
    replaced = sum(len(_CONTROL.findall(text)) for text in documents)
    if replaced:
        documents = [_CONTROL.sub(" ", text) for text in documents]
        console.warn(f"{path.name}: replaced {replaced} control character(s) (NUL, ESC, ...) with spaces")
    write_text(path, "\n\n".join(documents) + "\n")
    return documents


def text_rows(items: Sequence[ExportItem]) -> list[dict[str, Any]]:
    return [{"text": item.text} for item in items]


def qa_rows(items: Sequence[ExportItem]) -> list[dict[str, Any]]:
    """`{"question","answer"}` rows; export_items has made sure every item is question/answer shaped."""
    return [
        {"question": str(item.record["question"]), "answer": str(item.record["answer"])} for item in items
    ]


def estimated_tokens(text: str) -> int:
    return round(len(text.split()) * TOKENS_PER_WORD)


def record_columns(items: Sequence[ExportItem]) -> list[str]:
    seen: dict[str, None] = {}
    for item in items:
        for key in item.record:
            seen.setdefault(key, None)
    # `text` always: a QA record without one still has the text every format writes for it.
    ordered = [key for key in CONTRACT_FIELDS if key in seen or key == "text"]
    return ordered + [key for key in seen if key not in CONTRACT_FIELDS]
