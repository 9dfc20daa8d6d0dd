"""One writer per folder: a claim file created exclusively, refreshed as a heartbeat, taken over once its holder died.

A run directory, a study directory and a predict output are each written by one process at a time. The writer
creates `<folder>/.claim` by hard-linking a complete temporary file to that name: atomic, also on NFS, and it fails
when the name exists (O_EXCL semantics, never through a symlink). The file holds the holder's host, pid, the pid's
start time, its SLURM job and when it started; a thread touches it every HEARTBEAT_S seconds. Another process that
finds a claim judges its holder:

- on the same host, alive while its pid runs with the same start time (a reused pid is another process);
- a previous run of this very SLURM job (a requeue keeps the job id and counts restarts) is dead;
- on another host, alive while its heartbeat is younger than STALE_S seconds (SLURM nodes share a filesystem on
  which flock alone is not reliable).

A live holder: `ClaimBusy`, one line naming it and what to do, or with `wait=True` a wait until it lets go. A dead
holder's claim is taken over under a short guard file, so two takers never both remove it and both write.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from seg.errors import SegError

CLAIM_FILE = ".claim"
HEARTBEAT_S = 15.0  # how often a holder touches its claim
STALE_S = 120.0  # a claim of another host untouched this long belongs to a dead holder
GUARD_STALE_S = 30.0  # a takeover guard older than this was left by a taker that died


class ClaimBusy(SegError):
    """Another live process writes the folder."""


@dataclass(frozen=True)
class Holder:
    """Who holds a claim (the claim file's JSON)."""

    host: str
    pid: int
    pid_start: str | None  # the pid's start time (/proc/<pid>/stat field 22), to tell a reused pid apart
    started: float  # epoch seconds
    command: str
    token: str
    slurm_job: str | None = None
    slurm_restart: int = 0

    def describe(self) -> str:
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.started))
        return f"{self.command} (host {self.host}, pid {self.pid}, since {since})"


def _proc_stat(pid: int) -> tuple[str, str] | None:
    """(state, start time) of `pid` from /proc (fields 3 and 22), or None where there is no /proc entry."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()  # after the name (may hold spaces)
    except OSError:
        return None
    return fields[0], fields[19]


def _pid_start(pid: int) -> str | None:
    stat = _proc_stat(pid)
    return None if stat is None else stat[1]


def _this_holder(command: str) -> Holder:
    return Holder(socket.gethostname(), os.getpid(), _pid_start(os.getpid()), time.time(), command,
                  uuid.uuid4().hex, os.environ.get("SLURM_JOB_ID"),
                  int(os.environ.get("SLURM_RESTART_COUNT") or 0))  # fmt: skip


def read_holder(path: Path) -> Holder | None:
    """The holder recorded in claim file `path`; None when there is none. An unreadable file is a holder with pid 0
    (judged by its age alone)."""
    try:
        data = json.loads(path.read_text())
        return Holder(**data)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError):
        return Holder("?", 0, None, 0.0, "an unreadable claim", "?")


def alive(holder: Holder, heartbeat: float, now: float | None = None) -> bool:
    """Whether `holder` (whose claim was last touched at `heartbeat`) may still be writing."""
    me = _this_holder("")
    if holder.slurm_job and holder.slurm_job == me.slurm_job and holder.slurm_restart < me.slurm_restart:
        return False  # an earlier run of this requeued SLURM job
    if holder.host == me.host and holder.pid > 0:
        if holder.pid == me.pid and holder.pid_start == me.pid_start:
            return True
        try:
            os.kill(holder.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass  # another user's live process
        stat = _proc_stat(holder.pid)
        if stat is None:
            return True  # no /proc: the pid runs
        state, start = stat
        return state != "Z" and (holder.pid_start is None or start == holder.pid_start)  # a zombie has ended
    return (now or time.time()) - heartbeat < STALE_S


class Claim:
    """A held claim: its heartbeat thread runs until `release`."""

    def __init__(self, path: Path, holder: Holder) -> None:
        self.path, self.holder = path, holder
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"claim {path}", daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            try:
                if self.ours():
                    os.utime(self.path, follow_symlinks=False)
            except OSError:
                pass  # a full or vanished folder: the next beat tries again

    def ours(self) -> bool:
        current = read_holder(self.path)
        return current is not None and current.token == self.holder.token

    def release(self) -> None:
        """Stop the heartbeat and remove the claim file if it is still this holder's."""
        self._stop.set()
        if self.ours():
            self.path.unlink(missing_ok=True)


def _create(path: Path, holder: Holder) -> bool:
    """Create claim file `path` holding `holder`, complete, unless it exists; True when created."""
    tmp = path.with_name(f"{path.name}.{holder.token}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o644)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(asdict(holder), f)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path, follow_symlinks=False)
        except FileExistsError:
            return False
        except OSError:  # a filesystem without hard links: exclusive creation, then the content
            return _create_in_place(path, holder)
        return True
    finally:
        tmp.unlink(missing_ok=True)


def _create_in_place(path: Path, holder: Holder) -> bool:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as f:
        json.dump(asdict(holder), f)
    return True


def _heartbeat(path: Path) -> float:
    try:
        return path.lstat().st_mtime
    except FileNotFoundError:
        return time.time()


def _take_over(path: Path, dead: Holder) -> None:
    """Remove the claim of `dead`, under a guard file so that two takers cannot both remove a claim (the second
    would remove the first taker's new one)."""
    guard = path.with_name(path.name + ".takeover")
    try:
        fd = os.open(guard, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o644)
    except FileExistsError:
        if time.time() - _heartbeat(guard) > GUARD_STALE_S:
            guard.unlink(missing_ok=True)
        return
    os.close(fd)
    try:
        current = read_holder(path)
        if current is not None and current.token == dead.token:
            path.unlink(missing_ok=True)
    finally:
        guard.unlink(missing_ok=True)


def acquire(folder: Path, command: str, *, wait: bool = False, hint: str = "", poll_s: float = 1.0) -> Claim:
    """Claim `folder` (created if missing) for this process. A live holder: ClaimBusy naming it and `hint` (what to
    do), or with `wait` a wait until it lets go. A dead holder's claim is taken over."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / CLAIM_FILE
    me = _this_holder(command or " ".join(Path(a).name for a in sys.argv[:1]))
    while True:
        if _create(path, me):
            return Claim(path, me)
        holder = read_holder(path)
        if holder is None:
            continue  # released meanwhile
        if not alive(holder, _heartbeat(path)):
            _take_over(path, holder)
            continue
        if not wait:
            raise ClaimBusy(f"{folder} is being written by {holder.describe()}; {hint or 'wait until it ends'}"
                            f" (a holder that died is taken over once its pid is gone, or {STALE_S:g} s after its "
                            "last heartbeat on another host)")  # fmt: skip
        time.sleep(poll_s)


@contextmanager
def held(folder: Path, command: str, *, wait: bool = False, hint: str = "") -> Iterator[Claim]:
    """`acquire` for the duration of a block."""
    claim = acquire(folder, command, wait=wait, hint=hint)
    try:
        yield claim
    finally:
        claim.release()


def holder_of(folder: Path) -> Holder | None:
    """The live holder of `folder`'s claim, or None."""
    path = folder / CLAIM_FILE
    holder = read_holder(path)
    return holder if holder is not None and alive(holder, _heartbeat(path)) else None
