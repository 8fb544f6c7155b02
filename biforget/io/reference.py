"""Reference texts (e.g. for membership-inference calibration): JSONL records or plain text.

`.jsonl` and `.json` files hold one record per line with a `text` field. Any other file is plain text:
one document per paragraph (paragraphs separated by blank lines), or one per line when the file has no
blank line at all, so both a book excerpt and a one-sentence-per-line list read naturally.
"""

from __future__ import annotations

import re
from pathlib import Path

from biforget.errors import InputError
from biforget.io.jsonl import OnError, read_all
from biforget.io.sets import read_text_file

_BLANK_LINE = re.compile(r"\n[ \t]*\n")


def read_reference_texts(path: Path, *, on_error: OnError = "fail") -> list[str]:
    """The texts of `path`; a missing, unreadable, binary or empty file is an InputError naming it."""
    if path.suffix.lower() in (".jsonl", ".json"):
        return [str(r["text"]) for r in read_all(path, on_error=on_error, allow_empty=False)]
    text = read_text_file(path, "text")
    if _BLANK_LINE.search(text.strip()):
        documents = [" ".join(part.split()) for part in _BLANK_LINE.split(text)]
    else:
        documents = [line.strip() for line in text.splitlines()]
    documents = [d for d in documents if d]
    if not documents:
        raise InputError("no texts (empty input)", source=str(path))
    return documents
