"""Output files are created, never followed: a command's new file is opened exclusively (it must not exist) and
never through a symlink, so a link planted where an output goes (even a dangling one) cannot redirect a write
outside the output folder, and nothing that exists is replaced. Files a command renders again on every call
(summaries, reports, tables, figures) are replaced atomically: written to a new temporary file beside them, then
renamed over the old one, which replaces a symlink placed there instead of writing through it. Names that come
from files (ablation, arm, run names) are checked to be one plain file name before they become a path."""

from __future__ import annotations

import csv
import io
import os
import re
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from seg.errors import SegError

PLAIN_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._=,+@ -]*$")
_SAFE = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _SAFE


class OutputExists(SegError, FileExistsError):
    """An output path already holds a file, a folder or a symlink."""


def open_new(path: Path, mode: str = "wb") -> IO:
    """`path` opened for writing, created by this call (O_CREAT | O_EXCL | O_NOFOLLOW); OutputExists when anything,
    a dangling symlink included, is there."""
    try:
        fd = os.open(path, _NEW, 0o644)
    except FileExistsError as e:
        kind = "a symlink" if os.path.islink(path) else "a file"
        raise OutputExists(f"{path} already exists ({kind}); refusing to overwrite or follow it") from e
    return os.fdopen(fd, mode, **({} if "b" in mode else {"newline": ""}))


def open_append(path: Path) -> IO:
    """`path` opened as text to append to (a log a resumed run continues), created if missing, never through a
    symlink (O_NOFOLLOW); OutputExists when a symlink is there."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | _SAFE, 0o644)
    except OSError as e:
        if not os.path.islink(path):
            raise
        raise OutputExists(f"{path} is a symlink; refusing to follow it: remove it and run again") from e
    return os.fdopen(fd, "a")


def write_new(path: Path, data: bytes) -> None:
    """Write `data` to the new file `path` (see `open_new`)."""
    with open_new(path) as f:
        f.write(data)


def is_plain_name(name: object) -> bool:
    """One plain file name: no path separator, no `..`, not hidden, printable."""
    return isinstance(name, str) and bool(PLAIN_NAME.match(name)) and ".." not in name and len(name) <= 200


def atomic_write(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temp file in the same folder, fsync and rename: never half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise OSError(e.errno, e.strerror, str(path)) from e  # the file meant, not the temporary one
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def csv_text(columns: Sequence[str], rows: Iterable[Mapping[str, Any] | Sequence[Any]]) -> str:
    """`rows` as CSV text under the header `columns`: a row is a mapping (keys not in `columns` left out, missing
    ones empty) or a sequence in the columns' order."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow(columns)
    writer.writerows([row.get(c, "") for c in columns] if isinstance(row, Mapping) else row for row in rows)
    return buffer.getvalue()


def atomic_write_text(path: Path, text: str) -> None:
    """`atomic_write` for text (UTF-8)."""
    atomic_write(path, text.encode())


def save_figure(fig, path: Path, **savefig_kwargs) -> None:
    """Save a matplotlib figure to `path` through `atomic_write` (savefig itself would write through a symlink)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format=Path(path).suffix.lstrip(".") or "png", **savefig_kwargs)
    atomic_write(Path(path), buffer.getvalue())
