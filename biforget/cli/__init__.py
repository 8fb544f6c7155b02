"""The `biforget` command: options in, one library call, records out. Errors are mapped in `exits`."""

from __future__ import annotations

from biforget.cli import generate, loop, sets
from biforget.cli.exits import EXIT_CODES, exit_code_for, main, run
from biforget.cli.shared import app

__all__ = ["EXIT_CODES", "app", "exit_code_for", "generate", "loop", "main", "run", "sets"]
