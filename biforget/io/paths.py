"""The files a run writes, checked before it starts: no output over an input or over another output,
and folders made with errors that say what is in the way."""

from __future__ import annotations

import contextlib
import io
import os
import stat
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

from biforget.errors import OutputError, UsageError

try:
    import fcntl
except ImportError:  # Windows: no advisory locks, an output folder is not guarded against a second run
    fcntl = None  # type: ignore[assignment]


def make_folder(folder: Path, *, for_path: Path | None = None) -> None:
    """Create `folder` (and its parents) or raise an OutputError naming `for_path` and what is wrong;
    a file where a folder should be is named as such, not as "File exists"."""
    target = for_path or folder
    ancestor = folder
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise OutputError(f"{target}: cannot write: {ancestor} is not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{target}: cannot write: {exc.strerror or exc}") from None


def _identity(path: Path) -> tuple[int, int] | str:
    """What makes two spellings of a path (relative, through a symlink, a hard link) the same file."""
    try:
        info = path.stat()
    except OSError:
        return os.path.realpath(path)
    return (info.st_dev, info.st_ino)


def _stream_identity(stream: object) -> tuple[int, int] | None:
    """The file a standard stream is redirected to (`< FILE`, `> FILE`); None for a pipe or terminal."""
    try:
        info = os.fstat(stream.fileno())  # type: ignore[attr-defined]
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return None
    return (info.st_dev, info.st_ino) if stat.S_ISREG(info.st_mode) else None


def _stdin_identity() -> tuple[int, int] | None:
    return _stream_identity(sys.stdin)


def check_paths(
    reads: Mapping[str, str | Path | None],
    writes: Mapping[str, str | Path | None],
    *,
    stdout: bool = False,
) -> None:
    """Refuse a run whose outputs overwrite one of its inputs or each other, before anything is opened.

    `reads` and `writes` map the flag a path came from to the path (None: not given). An input of "-" is
    stdin, which counts when it is a redirected file (`< FILE`). With `stdout` the run writes stdout too,
    which counts as an output when it is redirected to a file (`> FILE`)."""
    outputs = [(flag, Path(path)) for flag, path in writes.items() if path is not None]
    seen: list[tuple[str, tuple[int, int] | str]] = []
    redirected = _stream_identity(sys.stdout) if stdout else None
    if redirected is not None:
        seen.append(("stdout", redirected))
        for source, given in reads.items():
            if given is not None and str(given) != "-" and _identity(Path(given)) == redirected:
                raise UsageError(
                    f"stdout is redirected to the input {source} {given}: writing it would destroy what is "
                    "read; redirect to another file"
                )
    for flag, path in outputs:
        identity = _identity(path)
        for other, other_identity in seen:
            if identity == other_identity and other == "stdout":
                raise UsageError(
                    f"stdout is redirected to {flag} {path}: one would overwrite the other; "
                    "give each its own file"
                )
            if identity == other_identity:
                raise UsageError(f"{other} and {flag} name the same file ({path}); give each its own")
        seen.append((flag, identity))
        for source, given in reads.items():
            if given is None:
                continue
            if str(given) == "-":
                same = _stdin_identity() == identity
                source = "stdin"
            else:
                same = _identity(Path(given)) == identity
            if same:
                raise UsageError(
                    f"{flag} {path} is also the input ({source}): writing it would destroy what is read; "
                    "write to another file"
                )


@contextlib.contextmanager
def folder_lock(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock on the output folder `folder` while a run fills it, as `-o` files are
    locked, so a second run to the same folder fails at start instead of replacing the first one's work.

    The lock is a hidden file beside the folder (`.NAME.lock`; the folder itself is swapped in by
    rename), removed when the run ends."""
    if fcntl is None:
        yield
        return
    lock_path = folder.parent / f".{folder.name}.lock"
    make_folder(folder.parent, for_path=folder)
    while True:
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as exc:
            raise OutputError(f"{folder}: cannot write: {exc.strerror or exc}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise OutputError(
                f"{folder}: another run is writing this folder; wait for it or use another"
            ) from None
        except OSError:  # a file system without locks still takes the folder
            os.close(fd)
            yield
            return
        # The run that held it before may have removed the file between our open and our lock.
        try:
            current = os.stat(lock_path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            current = False
        if current:
            break
        os.close(fd)
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            lock_path.unlink()
        os.close(fd)
