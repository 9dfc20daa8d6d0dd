"""Output files are created, never followed: a command's new file is opened exclusively (it must not exist) and
never through a symlink, so a link planted where an output goes (even a dangling one) cannot redirect a write
outside the output folder, and nothing that exists is replaced. Names that come from files (ablation, arm, run
names) are checked to be one plain file name before they become a path."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import IO

from seg.errors import SegError

PLAIN_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._=,+@ -]*$")
_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


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


def write_new(path: Path, data: bytes) -> None:
    """Write `data` to the new file `path` (see `open_new`)."""
    with open_new(path) as f:
        f.write(data)


def is_plain_name(name: object) -> bool:
    """One plain file name: no path separator, no `..`, not hidden, printable."""
    return isinstance(name, str) and bool(PLAIN_NAME.match(name)) and ".." not in name and len(name) <= 200
