"""`--format txt`: the documents one block each, separated by a blank line."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from biforget.config_sets import ExportConfig
from biforget.formats.base import ExportItem, Written, write_documents


def write(staging: Path, items: Sequence[ExportItem], config: ExportConfig) -> Written:
    write_documents(staging / "forget.txt", items)
    return Written()
