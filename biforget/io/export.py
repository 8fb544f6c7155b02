"""The export folder, written all or nothing: checked before any input is read, filled in a staging
folder beside it, then moved into place by rename, so a failure leaves DIR as it was and no
half-written file behind. What goes into the folder is each format's business (biforget/formats/).
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from biforget.errors import BiforgetError, UsageError

T = TypeVar("T")


class ExportError(BiforgetError):
    """The output folder cannot be created or written (exit code 1)."""


def check_destination(out: Path, force: bool) -> None:
    """Fail before any input is read: DIR a file, DIR non-empty without --force, or nowhere to write."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out}: exists and is not a folder; --out needs a folder")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise UsageError(f"{out}: folder is not empty; pass --force to write into it")
    ancestor = out.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise ExportError(f"{out}: cannot create the folder: {ancestor} is not a folder")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise ExportError(f"{out}: cannot write: permission denied in {ancestor}")


def _move_into(staging: Path, out: Path) -> None:
    """Move every staged entry into the existing folder `out`, replacing entries of the same name.

    A staged folder (the `datasets` folder, the config tree) replaces its namesake whole: the old one is
    renamed aside first, so the swap is two renames and the old copy is deleted only afterwards.
    """
    for entry in sorted(staging.iterdir()):
        target = out / entry.name
        if entry.is_dir() and target.exists():
            aside = Path(tempfile.mkdtemp(prefix=f".{entry.name}.old-", dir=out))
            os.replace(target, aside / entry.name)
            os.replace(entry, target)
            shutil.rmtree(aside, ignore_errors=True)
        else:
            os.replace(entry, target)


def _stage(out: Path) -> Path:
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        # Not mkdtemp: its 0700 mode would become DIR's mode; os.mkdir honours the umask like any folder.
        staging = out.parent / f".{out.name}.export-{os.getpid()}-{secrets.token_hex(4)}"
        staging.mkdir()
        return staging
    except OSError as exc:
        raise ExportError(f"{out}: cannot create the folder: {exc.strerror or exc}") from None


def _commit(staging: Path, out: Path) -> None:
    if out.is_dir():
        _move_into(staging, out)
        staging.rmdir()
    else:
        os.replace(staging, out)


def _files(root: Path) -> list[str]:
    found = []
    for path in sorted(root.rglob("*")):
        if path.is_file():
            relative = path.relative_to(root)
            # The datasets folder is one output; list it once, not file by file.
            if relative.parts[0] == "dataset":
                if "dataset/" not in found:
                    found.append("dataset/")
                continue
            found.append(str(relative))
    return found


def write_staged(out: Path, force: bool, write: Callable[[Path], T]) -> tuple[T, list[str]]:
    """Run `write(staging)`, then move what it wrote into `out`; its result and the files (relative
    paths, a `dataset/` folder once). An OSError on the way is an ExportError naming `out`."""
    check_destination(out, force)
    staging = _stage(out)
    try:
        result = write(staging)
        files = _files(staging)
        _commit(staging, out)
    except OSError as exc:
        raise ExportError(f"{out}: cannot write: {exc.strerror or exc}") from None
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return result, files


def write_text(path: Path, text: str) -> None:
    """UTF-8 with `\n` line ends on every platform, as the frameworks' readers expect."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="\n") as handle:
        handle.write(text)
