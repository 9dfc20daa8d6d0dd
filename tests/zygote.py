"""A fork server for the CLI tests: `python -m <module> <args>` without paying the imports every time.

Started once per test session (tests/clitools.py), this process imports what seg's entry points import (torch,
Hydra, Optuna, albumentations, matplotlib) and nothing more: it runs no torch op and starts no thread, so
forking it is safe. W&B is left for each child to import: its import-time state does not survive a fork (a
forked run's service connection closes after the first logs). Each request forks a child that takes the
request's working directory, environment, argv and output pipes, and runs the module as `python -m` does
(`runpy._run_module_as_main`): a real process with its own pid, signals, exit status, atexit handlers and
interpreter shutdown. Only the import work is shared, which is most of a smoke run's time (about 6 s of CPU per
process on the 2-core CI machine). Several children may run at once (two study drivers, a run and its resume).
The preloaded objects are frozen (`gc.freeze`, as the gc docs advise for a fork server): a child's garbage
collections, and the ones of its interpreter shutdown, skip them. Unfrozen, each child spent about 2 s of CPU
collecting the same 300,000 import-time objects on the way out (a fresh `python -m` pays that too); frozen, they
are never collected, which they never would be anyway (modules, classes, functions alive until exit).

Protocol, one JSON line each way. Request {"id", "module", "args", "cwd", "env", "stdout", "stderr"} (stdout and
stderr may name one file) -> {"id", "pid"} at once, {"pid", "exited"} when that child ends and {"pid",
"returncode"} when its output pipes are closed too, by every process that inherited them (W&B's service writes
its last files after the run's process has exited; `subprocess.run` waits for that, and so do the tests). A code
is negative when a signal killed the child, as subprocess reports it. End of input stops the server; running
children go on.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import runpy
import select
import signal
import sys

# What the entry points import; each is imported by a fresh `python -m` too, so preloading changes no behaviour.
PRELOAD = (
    "torch", "torch._dynamo", "torch.optim", "torchvision", "hydra", "omegaconf", "optuna",
    "albumentations", "matplotlib.pyplot", "scipy.stats", "seg.train", "seg.training", "seg.evaluate",
    "seg.predict", "seg.report", "seg.study.report", "seg.data.inspect", "seg.data.synthetic",
    "hydra_plugins.hydra_optuna_sweeper.optuna_sweeper", "hydra_plugins.hydra_joblib_launcher.joblib_launcher",
)  # fmt: skip
REAP_EVERY_S = 0.05


def _preload() -> None:
    import importlib

    for name in PRELOAD:
        with contextlib.suppress(ImportError):  # an extra that is not installed: the child fails as python -m would
            importlib.import_module(name)


def _become_child(request: dict, out: int, err: int) -> str:
    """In the forked child: take the request's process state (stdout and stderr: the write ends `out`, `err`);
    returns the module to run."""
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    null = os.open(os.devnull, os.O_RDONLY)
    for fd, target in ((null, 0), (out, 1), (err, 2)):
        os.dup2(fd, target)
    for fd in {null, out, err}:
        os.close(fd)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for sig in (signal.SIGTERM, signal.SIGCHLD):
        signal.signal(sig, signal.SIG_DFL)
    sys.modules.pop(request["module"], None)  # run as __main__ only, as python -m does (else runpy warns)
    sys.argv = ["-m", *request["args"]]  # python -m sets argv[0] to the module's file (runpy below)
    sys.path[0] = request["cwd"]  # python -m puts the working directory first
    return request["module"]


def _reply(message: dict) -> None:
    os.write(1, (json.dumps(message) + "\n").encode())


class _Child:
    """A running child: its output pipes, drained into the request's files, and its exit status once reaped."""

    def __init__(self, request: dict, pipes: dict[int, int]) -> None:
        self.files = {fd: os.open(request[name], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
                      for fd, name in pipes.items()}  # fmt: skip
        self.returncode: int | None = None

    def drain(self, fd: int) -> None:
        data = os.read(fd, 1 << 16)
        if data:
            os.write(self.files[fd], data)
        else:  # every writer closed it: the child and whatever it started (W&B's service, loader workers)
            os.close(fd)
            os.close(self.files.pop(fd))


def _fork(request: dict) -> tuple[int, dict[int, int]] | dict:
    """Fork the request's child: (pid, {read end: "stdout"|"stderr"}) here, the request in the child."""
    merged = request["stderr"] == request["stdout"]
    out_r, out_w = os.pipe()
    err_r, err_w = (out_r, out_w) if merged else os.pipe()
    for path in {request["stdout"], request["stderr"]}:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644))
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        for fd in {out_r, err_r}:
            os.close(fd)
        request["fds"] = (out_w, err_w)
        return request
    for fd in {out_w, err_w}:
        os.close(fd)
    return pid, {out_r: "stdout"} if merged else {out_r: "stdout", err_r: "stderr"}


def _serve() -> dict | None:
    """Answer requests until the input ends (None), or return the request this process is the child of. A child
    is reported twice: {"pid", "exited"} when it ends, {"pid", "returncode"} when its output is drained too (what
    subprocess.run waits for)."""
    pending, children, readers = b"", {}, {}  # pid -> _Child; read fd -> pid
    while True:
        ready, _, _ = select.select([0, *readers], [], [], REAP_EVERY_S if children else None)
        for fd in ready:
            if fd != 0:
                children[readers[fd]].drain(fd)
                if fd not in children[readers[fd]].files:
                    del readers[fd]
                continue
            data = os.read(0, 1 << 16)
            if not data:
                return None
            pending += data
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            request = json.loads(line)
            forked = _fork(request)
            if isinstance(forked, dict):
                return forked
            pid, pipes = forked
            children[pid] = _Child(request, pipes)
            readers.update(dict.fromkeys(pipes, pid))
            _reply({"id": request["id"], "pid": pid})
        while any(child.returncode is None for child in children.values()):
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                break
            children[pid].returncode = os.waitstatus_to_exitcode(status)
            _reply({"pid": pid, "exited": children[pid].returncode})
        for pid in [pid for pid, child in children.items() if child.returncode is not None and not child.files]:
            _reply({"pid": pid, "returncode": children.pop(pid).returncode})


def main() -> None:
    _preload()
    gc.collect()
    gc.freeze()  # before the first fork: children never traverse what the imports made (module docstring)
    request = _serve()
    if request is not None:
        runpy._run_module_as_main(_become_child(request, *request["fds"]), alter_argv=True)  # type: ignore[attr-defined]  # as -m
    # then interpreter shutdown as after `python -m`: atexit, non-daemon threads, the exit status


if __name__ == "__main__":
    main()
