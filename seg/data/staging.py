"""Folders that appear complete or not at all, even when their builder is killed (the cache, synthetic data).

`build_atomically(final, build)` fills a temporary folder `.<final name>.seg-build-<random>` beside `final` and
renames it to `final` in one step, so no reader ever sees half of it; of several processes building the same
folder the first rename wins and the others drop their copy. While it builds, the builder holds an exclusive
lock (flock) on `<temp folder>.lock`; the kernel drops the lock when the process dies, even by SIGKILL, so
`remove_stale_builds` can tell a dead builder's leftovers from a live build and remove them. Temporary folders
are never read.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

__all__ = ["MARK", "build_atomically", "remove_stale_builds"]

log = logging.getLogger(__name__)

MARK = ".seg-build-"  # in the name of every temporary build folder and its lock file


def build_atomically(final: Path, build: Callable[[Path], None]) -> None:
    """Run `build(tmp)` on a new empty folder beside `final`, then rename it to `final`.

    If `final` exists by then (another process finished first), this copy is dropped. The temporary folder
    and its lock file are removed in every case but SIGKILL, whose leftovers `remove_stale_builds` removes.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, lock = _new_locked_file(final)
    tmp = lock.with_suffix("")
    try:
        tmp.mkdir()
        build(tmp)
        with contextlib.suppress(OSError):  # `final` exists: another builder renamed its copy first; keep that
            os.rename(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        lock.unlink(missing_ok=True)
        os.close(fd)


def remove_stale_builds(folder: Path) -> list[Path]:
    """Remove the temporary folders in `folder` whose builder died (its lock is free); returns them."""
    removed = []
    for lock in sorted(folder.glob(f".*{MARK}*.lock")):
        try:
            fd = os.open(lock, os.O_RDONLY)
        except OSError:  # removed meanwhile, or not ours to read
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # a live build holds it (or this file system has no locks: leave it)
            os.close(fd)
            continue
        try:
            if _same_file(fd, lock):  # else another process removed it between our open and our lock
                shutil.rmtree(lock.with_suffix(""), ignore_errors=True)
                lock.unlink(missing_ok=True)
                removed.append(lock.with_suffix(""))
        finally:
            os.close(fd)
    if removed:
        log.info("Removed %d folder(s) left by killed builds in %s", len(removed), folder)
    return removed


def _new_locked_file(final: Path) -> tuple[int, Path]:
    """A new lock file beside `final`, created and locked by this process (retried if a cleaner removed it
    between its creation and the lock)."""
    while True:
        fd, name = tempfile.mkstemp(prefix=f".{final.name}{MARK}", suffix=".lock", dir=final.parent)
        with contextlib.suppress(OSError):  # a file system without locks: build unlocked (cleaners then skip it)
            fcntl.flock(fd, fcntl.LOCK_EX)
        if _same_file(fd, Path(name)):
            return fd, Path(name)
        os.close(fd)


def _same_file(fd: int, path: Path) -> bool:
    """Whether `path` still names the open file `fd` (it was not unlinked and replaced)."""
    try:
        return os.stat(path).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False
