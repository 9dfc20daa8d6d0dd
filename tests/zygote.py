"""A fork server for the CLI tests: `python -m <module> <args>` without paying the imports every time.

Started once per test session (tests/clitools.py), this process imports what seg's entry points import (torch,
Hydra, Optuna, W&B, albumentations, matplotlib) and nothing more: it runs no torch op and starts no thread, so
forking it is safe. Each request forks a child that takes the request's working directory, environment, argv and
output files, and runs the module as `python -m` does (`runpy._run_module_as_main`): a real process with its own
pid, signals, exit status, atexit handlers and interpreter shutdown. Only the import work is shared, which is
most of a smoke run's time (about 6 s of CPU per process on the 2-core CI machine). Several children may run at
once (two study drivers, a run and its resume).

Protocol, one JSON line each way. Request {"id", "module", "args", "cwd", "env", "stdout", "stderr"} (stdout and
stderr may name one file) -> {"id", "pid"} at once, then {"pid", "returncode"} when that child ends (negative:
killed by that signal, as subprocess reports it). End of input stops the server; running children go on.
"""

from __future__ import annotations

import contextlib
import json
import os
import runpy
import select
import signal
import sys

# What the entry points import; each is imported by a fresh `python -m` too, so preloading changes no behaviour.
PRELOAD = (
    "torch", "torch._dynamo", "torch.optim", "torchvision", "hydra", "omegaconf", "optuna", "wandb",
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


def _become_child(request: dict) -> str:
    """In the forked child: take the request's process state; returns the module to run."""
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    null = os.open(os.devnull, os.O_RDONLY)
    out = os.open(request["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    same = request["stderr"] == request["stdout"]
    err = out if same else os.open(request["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    for fd, target in ((null, 0), (out, 1), (err, 2)):
        os.dup2(fd, target)
    for fd in {null, out, err}:
        os.close(fd)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for sig in (signal.SIGTERM, signal.SIGCHLD):
        signal.signal(sig, signal.SIG_DFL)
    sys.argv = ["-m", *request["args"]]  # python -m sets argv[0] to the module's file (runpy below)
    sys.path[0] = request["cwd"]  # python -m puts the working directory first
    return request["module"]


def _reply(message: dict) -> None:
    os.write(1, (json.dumps(message) + "\n").encode())


def _serve() -> dict | None:
    """Answer requests until the input ends (None), or return the request this process is the child of."""
    pending, children = b"", set()
    while True:
        ready, _, _ = select.select([0], [], [], REAP_EVERY_S if children else None)
        if ready:
            data = os.read(0, 1 << 16)
            if not data:
                return None
            pending += data
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            request = json.loads(line)
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                return request
            children.add(pid)
            _reply({"id": request["id"], "pid": pid})
        while children:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                break
            children.discard(pid)
            _reply({"pid": pid, "returncode": os.waitstatus_to_exitcode(status)})


def main() -> None:
    _preload()
    request = _serve()
    if request is not None:
        runpy._run_module_as_main(_become_child(request), alter_argv=True)  # type: ignore[attr-defined]  # as -m
    # then interpreter shutdown as after `python -m`: atexit, non-daemon threads, the exit status


if __name__ == "__main__":
    main()
