"""The files a run writes, checked before it starts: no output over an input or over another output,
and folders made with errors that say what is in the way."""

from __future__ import annotations

import io
import os
import stat
import sys
from collections.abc import Mapping
from pathlib import Path

from biforget.errors import OutputError, UsageError


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


def _stdin_identity() -> tuple[int, int] | None:
    try:
        info = os.fstat(sys.stdin.fileno())
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return None
    return (info.st_dev, info.st_ino) if stat.S_ISREG(info.st_mode) else None


def check_paths(reads: Mapping[str, str | Path | None], writes: Mapping[str, str | Path | None]) -> None:
    """Refuse a run whose outputs overwrite one of its inputs or each other, before anything is opened.

    `reads` and `writes` map the flag a path came from to the path (None: not given). An input of "-" is
    stdin, which counts when it is a redirected file (`< FILE`)."""
    outputs = [(flag, Path(path)) for flag, path in writes.items() if path is not None]
    seen: list[tuple[str, tuple[int, int] | str]] = []
    for flag, path in outputs:
        identity = _identity(path)
        for other, other_identity in seen:
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
