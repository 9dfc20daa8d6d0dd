"""User-facing errors: each message says what went wrong and what to do."""

import errno
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class SegError(Exception):
    """Base class of errors that are reported as one clear line, without a traceback."""


class ConfigError(SegError, ValueError):
    """A config value is invalid; the message names the key and what is allowed."""


class CheckpointError(SegError, RuntimeError):
    """A checkpoint cannot be used: not ours, from another model, or unreadable."""


class MissingWeightsError(SegError, RuntimeError):
    """Pretrained weights were asked for but are not on this machine (and cannot be downloaded)."""


class StorageFullError(SegError, OSError):
    """A file could not be written for lack of room or rights (disk full, quota, read-only folder): says which file
    and the free space of its disk."""


WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}


def write_error(error: OSError) -> StorageFullError:
    """`error` as one line: what failed, on which file, and the free space of that file's disk."""
    where = Path(error.filename) if error.filename else Path.cwd()
    folder = next((p for p in (where, *where.parents) if p.is_dir()), Path("/"))
    free = shutil.disk_usage(folder).free
    return StorageFullError(
        f"{error.strerror or error}: {error.filename or 'a file being written'} ({free / 2**30:.2f} GiB free on the "
        f"disk of {folder}); make room (or fix the folder's rights) and run again: resume=<run> continues from last.pt"
    )


def find_user_error(error: BaseException) -> SegError | None:
    """The SegError behind `error`, following `raise ... from` chains (Hydra wraps errors of `_target_`s); a full
    disk, a quota or a read-only folder (an OSError of WRITE_ERRNOS) is one too (StorageFullError)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, SegError):
            return current
        if isinstance(current, OSError) and current.errno in WRITE_ERRNOS:
            return write_error(current)
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


@contextmanager
def exit_on_user_error(code: int = 2) -> Iterator[None]:
    """Turn a SegError (even one wrapped by Hydra) into `error: <message>` on stderr and exit `code`."""
    try:
        yield
    except Exception as e:
        user_error = find_user_error(e)
        if user_error is None:
            raise
        print(f"error: {user_error}", file=sys.stderr)
        sys.exit(code)


def folder_or_error(path: str | Path, key: str) -> Path:
    """`path`, checked before anything is created there: a ConfigError naming `key` when `path`, or the nearest
    existing folder above it, is a file (mkdir would fail later with a traceback, or after work was done)."""
    path = Path(path).expanduser()
    existing = next((p for p in (path, *path.parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():
        where = "is a file" if existing == path else f"lies under a file ({existing})"
        raise ConfigError(f"invalid config: {key}={path} {where}; set {key} to a folder")
    return path


class NonFiniteError(SegError, FloatingPointError):
    """The loss or the weights became NaN or inf: the epoch fails and no checkpoint keeps it."""

    def __init__(self, what: str, full_precision: bool = False):
        """`full_precision`: the run already trains at trainer.precision=32 (no point suggesting it)."""
        fixes = "Lower optimizer.lr or set trainer.grad_clip=1.0" if full_precision else (
            "Lower optimizer.lr, set trainer.grad_clip=1.0, or use trainer.precision=32")
        super().__init__(f"{what}; the run stopped, and best.pt / last.pt keep the last finite epoch. {fixes}.")


class NonFiniteLossError(NonFiniteError):
    """The training loss became NaN or inf at a known batch."""

    def __init__(self, epoch: int, batch: int, full_precision: bool = False):
        super().__init__(f"the loss became NaN/inf at epoch {epoch}, batch {batch}", full_precision)
        self.epoch = epoch
        self.batch = batch
