"""The one output layer: records go to stdout through the writer; everything a person reads goes to stderr."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress


@dataclass
class _State:
    quiet: bool = False


_state = _State()


def set_quiet(quiet: bool) -> None:
    """`--quiet`: no progress, no informational messages; warnings and errors still print."""
    _state.quiet = quiet


def is_quiet() -> bool:
    return _state.quiet


@lru_cache(maxsize=1)
def stderr_console() -> Console:
    from rich.console import Console

    # User text (topics, file names) is printed as given: no markup, and no `:x:` turned into emoji.
    return Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)


def info(message: str) -> None:
    if not _state.quiet:
        stderr_console().print(message, markup=False)


def warn(message: str) -> None:
    stderr_console().print(f"warning: {message}", style="yellow", markup=False)


def error(message: str) -> None:
    stderr_console().print(f"error: {message}", style="bold red", markup=False)


def debug_enabled() -> bool:
    return os.environ.get("BIFORGET_DEBUG", "") not in ("", "0")


class Tracker:
    """What a pipeline sees of the progress display: tasks with totals, advances and a live status.

    The display starts with the first task, so a command that fails early prints no empty bar. Built
    without a display (the library default, or --quiet) it does nothing and pipelines never branch on it.
    """

    def __init__(self, display: Progress | None = None) -> None:
        self._display = display
        self._started = False

    def start(self, description: str, total: float | None, unit: str = "it") -> int | None:
        if self._display is None:
            return None
        if not self._started:
            self._display.start()
            self._started = True
        return int(self._display.add_task(description, total=total, unit=unit, status=""))

    def advance(self, task: int | None, amount: float = 1) -> None:
        if self._display is not None and task is not None:
            self._display.advance(task, amount)  # type: ignore[arg-type]

    def skip(self, task: int | None, amount: float) -> None:
        """Advance over work a previous run did (`--resume`), left out of the rate."""
        if self._display is not None and task is not None and amount:
            self._display.advance(task, amount)  # type: ignore[arg-type]
            self._display.update(task, skipped=amount)  # type: ignore[arg-type]

    def status(self, task: int | None, text: str) -> None:
        if self._display is not None and task is not None:
            self._display.update(task, status=text)  # type: ignore[arg-type]

    def close(self) -> None:
        if self._display is not None and self._started:
            self._display.stop()
            self._started = False


@contextmanager
def tracker() -> Iterator[Tracker]:
    """A Tracker drawing on stderr, or an inert one under --quiet."""
    display = None if _state.quiet else make_progress()
    handle = Tracker(display)
    try:
        yield handle
    finally:
        handle.close()


def make_progress() -> Progress:
    """A progress display on stderr that never touches stdout, so JSONL on stdout stays clean."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        Task,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.text import Text

    class RateColumn(ProgressColumn):
        """Items per second over the whole run, in the unit the task names (`unit=` field).

        Not rich's windowed speed: stages advance a whole batch after minutes of work, and a window
        holding only that burst shows thousands per second."""

        def render(self, task: Task) -> Text:
            unit = task.fields.get("unit", "it")
            done = task.completed - float(task.fields.get("skipped", 0))
            elapsed = task.finished_time if task.finished else task.elapsed
            if not elapsed or done <= 0:
                return Text("")
            rate = done / elapsed
            # Three significant digits below 10: rewrite runs at a few hundredths of a fact a second.
            shown = f"{rate:,.1f}" if rate >= 10 else f"{rate:.3g}"
            return Text(f"{shown} {unit}/s", style="progress.data.speed")

    class StatusColumn(ProgressColumn):
        """A free-text status a stage updates live (`status=` field), e.g. the diversity curve."""

        def render(self, task: Task) -> Text:
            return Text(str(task.fields.get("status", "")))

    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        StatusColumn(),
    )
    return Progress(
        *columns,
        console=stderr_console(),
        redirect_stdout=False,
        redirect_stderr=False,
        disable=_state.quiet,
        transient=False,
    )
