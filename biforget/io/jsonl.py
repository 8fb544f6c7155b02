"""JSONL in and out, following the input conventions of docs/running.md.

Input comes from `-i FILE`, `-i -` (stdin), or stdin when it is a pipe or a file; a terminal, a closed
or missing stdin is "no input". Bad lines are reported as `FILE:LINE: reason` and either stop the run or
are counted and skipped. A line over `MAX_LINE_BYTES` is such a bad line: it is never held in memory
whole, so one runaway line cannot exhaust memory before any model sees it.

The writer flushes every line so an interrupted run leaves whole records. It takes its file (and a lock
on it) when built, but truncates it only when the first record comes or the run ends well, so a run that
fails at start leaves an existing file as it was.
"""

from __future__ import annotations

import io
import json
import os
import re
import stat
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

from biforget import console
from biforget.errors import InputError, OutputError, ReaderGone, UsageError
from biforget.io.paths import make_folder
from biforget.records import Record

try:
    import fcntl
except ImportError:  # Windows: no advisory locks, the output is not guarded against a second run
    fcntl = None  # type: ignore[assignment]

OnError = Literal["fail", "skip"]
STDIN_NAME = "<stdin>"
STDOUT_NAME = "<stdout>"
# 1 MiB per line: a record's text is a passage or a fact, and a megabyte is already far beyond any
# model context; a longer line is a wrong file (a whole book on one line) or runaway output.
MAX_LINE_BYTES = 1 << 20


@dataclass
class InputSource:
    """Where records come from, and how many bad lines were skipped on the way."""

    name: str
    stream: IO[bytes] | None
    on_error: OnError = "fail"
    skipped: int = 0
    read: int = 0
    # Line number of the record iter_records yielded last, so later checks can name the line.
    line: int = 0
    # Opened from `-i FILE`: a file someone named, so an empty one is a mistake, not "no input".
    named: bool = False
    _owned: bool = field(default=False, repr=False)

    @property
    def present(self) -> bool:
        return self.stream is not None

    def close(self) -> None:
        if self._owned and self.stream is not None:
            self.stream.close()


def _stdin_carries_data() -> bool:
    """True when stdin is a pipe, a regular file or a socket: something a caller chose to give us.

    A terminal means nobody piped anything; a closed or missing stdin (CI jobs) means no input. A
    character device other than a terminal (/dev/null) reads as empty, which is also no input.
    """
    stream = sys.stdin
    if stream is None or stream.closed:
        return False
    try:
        fd = stream.fileno()
        mode = os.fstat(fd).st_mode
    except (OSError, ValueError, io.UnsupportedOperation):
        return False
    if stream.isatty():
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISREG(mode) or stat.S_ISSOCK(mode) or stat.S_ISCHR(mode)


def open_input(path: str | Path | None, *, on_error: OnError = "fail") -> InputSource:
    """Resolve the input convention to a byte stream, or to no input at all."""
    if path is None:
        if not _stdin_carries_data():
            return InputSource(STDIN_NAME, None, on_error)
        return InputSource(STDIN_NAME, sys.stdin.buffer, on_error)
    if str(path) == "-":
        if sys.stdin is None or sys.stdin.closed:
            raise InputError("stdin is closed", source=STDIN_NAME)
        return InputSource(STDIN_NAME, sys.stdin.buffer, on_error)
    file = Path(path)
    if file.is_dir():
        raise InputError("is a directory, not a file", source=str(file))
    try:
        handle = file.open("rb")
    except FileNotFoundError:
        raise InputError("no such file", source=str(file)) from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", source=str(file)) from None
    return InputSource(str(file), handle, on_error, named=True, _owned=True)


def decode_line(raw: bytes, source: str, number: int) -> str:
    if b"\x00" in raw:
        raise InputError("binary data (NUL byte), not JSONL text", source=source, line=number)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError("not UTF-8 text", source=source, line=number) from None
    if number == 1:
        text = text.removeprefix("\ufeff")
    return text.rstrip("\r\n")


# A \uD800-\uDFFF escape: half of a surrogate pair, which is text only with its other half.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def check_text_value(value: Any, json_text: str, source: str, number: int) -> Any:
    """`value` parsed from `json_text`, or an InputError when a string in it holds a lone surrogate
    (valid JSON, but no text: it cannot be written as UTF-8, so every later step would fail on it)."""
    if _SURROGATE_ESCAPE.search(json_text) is None:
        return value
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise InputError(
            "a string holds a lone surrogate escape (\\ud800-\\udfff without its pair), which is not text",
            source=source,
            line=number,
        ) from None
    return value


def loads_value(text: str, source: str, number: int) -> Any:
    """One JSON value of a line, with every way a line can fail as an InputError naming it."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"malformed JSON ({exc.msg}, column {exc.colno})", source=source, line=number
        ) from None
    except RecursionError:
        raise InputError("JSON nested too deeply to be a record", source=source, line=number) from None
    return check_text_value(value, text, source, number)


def _parse_line(text: str, source: str, number: int) -> Record:
    value = loads_value(text, source, number)
    if not isinstance(value, dict):
        raise InputError(f"expected a JSON object, got {type(value).__name__}", source=source, line=number)
    return value


def bounded_lines(stream: IO[bytes], limit: int = MAX_LINE_BYTES) -> Iterator[tuple[bytes, int]]:
    """Each line with its length in bytes; a line over `limit` comes back empty, read past in chunks."""
    while True:
        raw = stream.readline(limit + 1)
        if not raw:
            return
        if len(raw) <= limit or raw.endswith(b"\n"):
            yield raw, len(raw)
            continue
        size = len(raw)
        while not raw.endswith(b"\n"):
            raw = stream.readline(limit)
            if not raw:
                break
            size += len(raw)
        yield b"", size


def line_too_long(size: int, limit: int, source: str, number: int, what: str = "line") -> InputError:
    return InputError(
        f"{what} of {size:,} bytes, over the {limit:,} a record may hold", source=source, line=number
    )


def iter_records(
    source: InputSource,
    *,
    required: Iterable[str] = ("text",),
    allow_empty: bool = True,
    max_line_bytes: int = MAX_LINE_BYTES,
) -> Iterator[Record]:
    """Yield one record per non-blank line. Bad lines raise InputError, or are skipped and counted.

    A line longer than `max_line_bytes` is a bad line (the record is never parsed). `allow_empty=False`
    makes a named file (`-i FILE`) without records an error; stdin without records stays "no input"."""
    if source.stream is None:
        return
    needed = tuple(required)
    try:
        for number, (raw, size) in enumerate(bounded_lines(source.stream, max_line_bytes), start=1):
            try:
                if size > max_line_bytes:
                    raise line_too_long(size, max_line_bytes, source.name, number)
                text = decode_line(raw, source.name, number)
                if not text.strip():
                    continue
                record = _parse_line(text, source.name, number)
                for key in needed:
                    value = record.get(key)
                    if not isinstance(value, str) or not value.strip():
                        raise InputError(f"record has no {key!r} field", source=source.name, line=number)
            except InputError as exc:
                if source.on_error == "fail":
                    raise
                source.skipped += 1
                console.warn(f"skipped {exc}")
                continue
            source.read += 1
            source.line = number
            yield record
    finally:
        source.close()
    if source.skipped:
        console.warn(f"{source.name}: skipped {source.skipped} bad line(s)")
    if not allow_empty and source.named and not source.read:
        raise InputError("no records (empty input)", source=source.name)


def read_all(
    path: str | Path | None,
    *,
    on_error: OnError = "fail",
    required: Iterable[str] = ("text",),
    allow_empty: bool = True,
) -> list[Record]:
    """Read every record; `allow_empty=False` turns an empty input into an error naming the source."""
    source = open_input(path, on_error=on_error)
    records = list(iter_records(source, required=required))
    if not records and not allow_empty and (source.present or path is not None):
        raise InputError("no records (empty input)", source=source.name)
    return records


def read_existing(path: Path) -> tuple[list[Record], int]:
    """Records already in an output file, for `--resume`. A torn last line (killed mid-write) is dropped.

    Returns the records and the byte length of the intact prefix, so the caller can cut the torn tail
    before appending.
    """
    if not path.exists():
        return [], 0
    data = path.read_bytes()
    records: list[Record] = []
    intact = 0
    lines = data.split(b"\n")
    offset = 0
    for number, raw in enumerate(lines, start=1):
        is_last = number == len(lines)
        end = offset + len(raw) + (0 if is_last else 1)
        if raw.strip():
            try:
                records.append(_parse_line(decode_line(raw, str(path), number), str(path), number))
            except InputError:
                if is_last or all(not rest.strip() for rest in lines[number:]):
                    console.warn(f"{path}:{number}: dropped a torn last line from an interrupted run")
                    break
                raise
        intact = end
        offset = end
    return records, intact


def _lock(fd: int, path: Path) -> None:
    """An exclusive lock for the run's lifetime, so two runs never interleave lines in one file."""
    if fcntl is None:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise OutputError(f"{path}: another run is writing this file; wait for it or use another") from None
    except OSError:
        pass  # a file system without locks (some network mounts) still takes the records


class RecordWriter:
    """Writes records as compact JSON lines and flushes each one.

    To stdout when `path` is None; missing folders above `path` are created with `make_parents`. The
    file is opened and locked here, so a path that cannot be written or a file another run holds fails
    before any work; it is truncated (or, with `resume`, its torn tail
    cut) only at the first record or when the run ends without error. A failed run that wrote nothing
    leaves an existing file untouched and removes a file it created.
    """

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        resume: bool = False,
        make_parents: bool = True,
        flag: str = "-o",
    ) -> None:
        self.path = Path(path) if path is not None else None
        self.name = str(self.path) if self.path is not None else STDOUT_NAME
        self.resume = resume
        self.existing: list[Record] = []
        self.written = 0
        self._fd: int | None = None
        self._file: IO[bytes] | None = None
        self._created = False
        self._intact = 0
        if resume and self.path is None:
            raise UsageError("--resume needs -o FILE: there is no file to resume from")
        if self.path is None:
            if sys.stdout is None or sys.stdout.closed:
                raise OutputError(f"{STDOUT_NAME}: stdout is closed; pass -o FILE")
            self._stream: IO[str] = sys.stdout
            # Records are UTF-8 whatever the locale says (a cp1252 or latin-1 stdout would garble or
            # crash on them), so they go to the byte layer beneath stdout when there is one.
            self._bytes: IO[bytes] | None = getattr(sys.stdout, "buffer", None)
            return
        if self.path.is_dir():
            raise UsageError(f"{self.path}: is a directory; {flag} needs a file")
        if make_parents:
            make_folder(self.path.parent, for_path=self.path)
        try:
            self._created = not self.path.exists()
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as exc:
            raise OutputError(f"{self.path}: cannot write: {exc.strerror or exc}") from None
        _lock(fd, self.path)
        self._fd = fd
        if resume:
            try:
                self.existing, self._intact = read_existing(self.path)
            except BaseException:
                self.close(failed=True)
                raise

    @property
    def existing_ids(self) -> set[str]:
        return {str(record.get("id")) for record in self.existing}

    def _begin(self) -> IO[bytes]:
        """Cut the file to what this run keeps and open it for appending: the first moment it changes."""
        if self._file is not None:
            return self._file
        assert self._fd is not None
        fd = self._fd
        if stat.S_ISREG(os.fstat(fd).st_mode):
            keep = self._intact if self.resume else 0
            os.ftruncate(fd, keep)
            if keep and os.pread(fd, 1, keep - 1) != b"\n":
                os.pwrite(fd, b"\n", keep)
            os.lseek(fd, 0, os.SEEK_END)
        self._file = open(fd, "ab", closefd=True)  # noqa: SIM115 (closed by close(), after the run)
        return self._file

    def write(self, record: Record) -> None:
        """One record as one compact JSON line, flushed; never a line longer than the readers take."""
        line = json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"
        size = len(line.encode("utf-8"))  # with its newline, as the readers count
        if size > MAX_LINE_BYTES:
            raise OutputError(
                f"{self.name}: record {record.get('id')} would be a line of {size:,} bytes, over the "
                f"{MAX_LINE_BYTES:,} a record may hold; it is not written"
            )
        self._put(line)

    def write_document(self, value: Any) -> None:
        """One JSON document, indented for people (the evaluate report), UTF-8 like the records."""
        self._put(json.dumps(value, ensure_ascii=False, indent=2) + "\n")

    def _put(self, line: str) -> None:
        try:
            if self.path is not None:
                handle = self._begin()
                handle.write(line.encode("utf-8"))
                handle.flush()
            elif self._bytes is not None:
                self._stream.flush()  # anything already written through the text layer goes first
                self._bytes.write(line.encode("utf-8"))
                self._bytes.flush()
            else:
                self._stream.write(line)
                self._stream.flush()
        except BrokenPipeError:
            raise ReaderGone(f"{self.name}: the reader went away") from None
        except (OSError, ValueError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "the stream is closed"
            raise OutputError(f"{self.name}: cannot write: {reason}") from None
        self.written += 1

    def write_all(self, records: Iterable[Record]) -> int:
        for record in records:
            self.write(record)
        return self.written

    def close(self, *, failed: bool = False) -> None:
        """End the run: a good end with nothing written still empties the file (a run of no records);
        a failed one that wrote nothing leaves the file as it found it."""
        if self._fd is None:
            return
        try:
            if self._file is None and not failed:
                self._begin()
            if self._file is not None:
                self._file.close()
            else:
                os.close(self._fd)
                if self._created and self.path is not None:
                    self.path.unlink(missing_ok=True)
        except OSError as exc:
            if not failed:
                raise OutputError(f"{self.name}: cannot write: {exc.strerror or exc}") from None
        finally:
            self._fd = None
            self._file = None

    def __enter__(self) -> RecordWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *rest: Any) -> None:
        self.close(failed=exc_type is not None)
