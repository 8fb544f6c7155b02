"""`--format txt`: the documents one block each, separated by a blank line."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from biforget.config_sets import ExportConfig
from biforget.formats.base import QA_ELSEWHERE, ExportItem, Written, qa_as_text_note, write_documents


def write(staging: Path, items: Sequence[ExportItem], config: ExportConfig) -> Written:
    write_documents(staging / "forget.txt", items)
    note = qa_as_text_note("txt", items, QA_ELSEWHERE)
    return Written(notes=[note] if note else [])
