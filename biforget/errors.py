"""Typed errors of the library. The CLI maps them to one-line messages and exit codes in one place."""

from __future__ import annotations


class BiforgetError(Exception):
    """Base of every error the library raises on purpose. Exit code 1 unless a subclass says otherwise."""

    exit_code = 1


class UsageError(BiforgetError):
    """The request itself is wrong: an option out of range, options that contradict each other."""

    exit_code = 2


class InputError(BiforgetError):
    """Input data that cannot be used: a malformed line, a missing field, an empty or binary file."""

    def __init__(self, message: str, *, source: str | None = None, line: int | None = None) -> None:
        self.source = source
        self.line = line
        location = source if line is None else f"{source}:{line}"
        super().__init__(f"{location}: {message}" if location else message)


class TemplateError(UsageError):
    """A prompt template with a missing or unknown placeholder, found at start-up."""


class ModelError(BiforgetError):
    """A model that cannot be found, loaded or served on the requested hardware."""
