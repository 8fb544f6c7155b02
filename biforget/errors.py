"""Typed errors of the library. The CLI maps them to one-line messages and exit codes in one table."""

from __future__ import annotations

from collections.abc import Mapping


class BiforgetError(Exception):
    """Base of every error the library raises on purpose: a runtime or data error unless a subclass
    says the request itself is wrong."""


class UsageError(BiforgetError):
    """The request itself is wrong: an option out of range, options that contradict each other."""


class InputError(BiforgetError):
    """Input data that cannot be used: a malformed line, a missing field, an empty or binary file."""

    def __init__(self, message: str, *, source: str | None = None, line: int | None = None) -> None:
        self.source = source
        self.line = line
        location = source if line is None else f"{source}:{line}"
        super().__init__(f"{location}: {message}" if location else message)


class OutputError(BiforgetError):
    """An output that cannot be written: a read-only or full file system, a closed stdout, a file
    another run is writing."""


class ReaderGone(OutputError):
    """Whoever read stdout went away (`| head -1`): not a failure of the run, nothing to report.

    Raised in place of BrokenPipeError, which Click would catch and turn into a plain exit 1."""


class TemplateError(UsageError):
    """A prompt template with a missing or unknown placeholder, found at start-up."""


class ModelError(BiforgetError):
    """A model that cannot be found, loaded or served on the requested hardware."""


class NothingProduced(BiforgetError):
    """A stage that was asked for records made none of its own: what it generated, what each rejection
    reason took, and the setting most likely to help, so an empty output is never a silent success."""

    def __init__(
        self,
        stage: str,
        wanted: str,
        generated: str,
        rejected: Mapping[str, int],
        hint: str,
    ) -> None:
        self.stage = stage
        self.rejected = dict(rejected)
        self.hint = hint
        reasons = ", ".join(f"{reason} {count}" for reason, count in rejected.items() if count)
        counts = f"generated {generated}" + (f"; rejected: {reasons}" if reasons else "")
        super().__init__(f"{stage}: no {wanted} ({counts}); {hint}")
