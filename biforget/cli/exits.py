"""From an exception to one line on stderr and an exit code, in one ordered table; and `run`."""

from __future__ import annotations

import errno
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import typer

from biforget import console
from biforget.cli.shared import app
from biforget.errors import BiforgetError, NothingProduced, ReaderGone, UsageError
from biforget.io.export import ExportError

Message = Callable[[BaseException], str | None]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else ""


def _os_error(exc: BaseException) -> str:
    """A file the library did not wrap (a trace file, a plot): the path and what the OS said."""
    assert isinstance(exc, OSError)
    reason = exc.strerror or _first_line(exc)
    return f"{exc.filename}: {reason}" if exc.filename else reason


def _broken_pipe(exc: BaseException) -> None:
    """The reader went away (`| head -1`): nothing to say. Point stdout at /dev/null so the interpreter's
    own flush at exit does not print "Exception ignored ... BrokenPipeError"."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (AttributeError, OSError, ValueError):
        pass
    return None


def _internal(exc: BaseException) -> str:
    return f"internal error: {type(exc).__name__}: {_first_line(exc)} (set BIFORGET_DEBUG=1 for a traceback)"


# First match wins, so subclasses come before their bases (ReaderGone and UsageError before
# BiforgetError, BrokenPipeError before OSError). A message of None prints nothing. 141 is what a shell
# reports for a writer a closed pipe ended (128 + SIGPIPE).
EXIT_CODES: tuple[tuple[type[BaseException], int, Message], ...] = (
    (KeyboardInterrupt, 130, lambda exc: "interrupted"),
    (ReaderGone, 141, _broken_pipe),
    (BrokenPipeError, 141, _broken_pipe),
    (UsageError, 2, str),
    (ExportError, 1, str),
    # A stage asked for records that made none: its one line holds the counts by reason and a setting.
    (NothingProduced, 1, str),
    (BiforgetError, 1, str),
    (typer.Abort, 1, lambda exc: "aborted"),
    (MemoryError, 1, lambda exc: "out of memory; try a smaller --batch-size or --quantize 8bit/4bit"),
    (OSError, 1, _os_error),
    (Exception, 1, _internal),
)
QUIET = (KeyboardInterrupt, ReaderGone, BrokenPipeError)


def _typer_usage(exc: BaseException) -> int | None:
    """Typer's own usage errors (an option that does not parse, a missing option): their code, or None."""
    format_message: Any = getattr(exc, "format_message", None)
    exit_code = getattr(exc, "exit_code", None)
    if not callable(format_message) or not isinstance(exit_code, int):
        return None
    if type(exc).__name__ == "NoArgsIsHelpError":
        # Bare `biforget`: the help is the answer (rich has printed it already, plain Click carries it as
        # the message), not an "error:" line with nothing after it.
        if format_message().strip():
            print(format_message(), file=sys.stderr)
        return exit_code
    context = getattr(exc, "ctx", None)
    where = f"{context.command_path}: " if context is not None else ""
    console.error(f"{where}{format_message()}")
    return exit_code


def exit_code_for(exc: BaseException) -> int:
    """The one mapping from exceptions to a one-line message on stderr and an exit code."""
    if isinstance(exc, SystemExit):
        context = exc.__context__
        if isinstance(context, OSError) and context.errno == errno.EPIPE:
            # The option parser's own exit when printing help into a closed pipe (`--help | head -1`):
            # the reader went away, as for records.
            _broken_pipe(context)
            return 141
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    if console.debug_enabled() and not isinstance(exc, QUIET):
        traceback.print_exception(exc, file=sys.stderr)
    code = _typer_usage(exc)
    if code is not None:
        return code
    for kind, code, message in EXIT_CODES:
        if isinstance(exc, kind):
            line = message(exc)
            if line is not None:
                console.error(line)
            return code
    return 1


def _config_path(args: Sequence[str]) -> Path | None:
    """`--config FILE` is applied before parsing, so the file can supply every other option's default."""
    for index, arg in enumerate(args):
        if arg == "--config" and index + 1 < len(args):
            return Path(args[index + 1])
        if arg.startswith("--config="):
            return Path(arg.partition("=")[2])
    return None


def _default_map(args: Sequence[str]) -> dict[str, Any] | None:
    from biforget.config import config_default_map

    path = _config_path(args)
    if path is None:
        return None
    group = typer.main.get_command(app)
    commands = getattr(group, "commands", {})
    defaults = config_default_map(
        path, {name: [p.name for p in command.params if p.name] for name, command in commands.items()}
    )
    for name, values in defaults.items():
        flags = {p.name for p in commands[name].params if getattr(p, "is_flag", False)}
        for key, value in values.items():
            # TOML's true is no number: the option parser would read it as 1.
            if isinstance(value, bool) and key not in flags:
                raise UsageError(
                    f"{path}: {key} = {str(value).lower()}: a switch's value, and {key} is not a switch"
                )
    return defaults


def run(args: Sequence[str] | None = None) -> int:
    """Run the CLI on `args` and return the exit code instead of exiting."""
    arguments = list(sys.argv[1:] if args is None else args)
    try:
        result = app(
            args=arguments, prog_name="biforget", standalone_mode=False, default_map=_default_map(arguments)
        )
    except BaseException as exc:
        return exit_code_for(exc)
    if isinstance(result, int) and result == 130:
        console.error("interrupted")
    return result if isinstance(result, int) else 0


def main() -> None:
    sys.exit(run())
