"""Run the real command-line entry points in a subprocess, as a user would."""

from __future__ import annotations

import functools
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def cli_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment for a CLI run: W&B offline and silent, no API key, Hydra's short errors."""
    full_env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", "HYDRA_FULL_ERROR": "0"}
    full_env.pop("WANDB_API_KEY", None)
    return {**full_env, **(env or {})}


def run_cli(
    module: str, *args: str, cwd: Path | None = None, timeout: int = 300, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """`python -m <module> <args>` with `cli_env`; returns the finished process (text output)."""
    process = start_cli(module, *args, cwd=cwd, env=cli_env(env))
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise
    return subprocess.CompletedProcess([module, *args], process.returncode, out, err)


def start_cli(
    module: str, *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, merge_stderr: bool = False
) -> ZygoteProcess | subprocess.Popen:
    """`python -m <module> <args>` started, not waited for: a Popen look-alike forked from the session's zygote
    (tests/zygote.py: the imports done once), or a real Popen with SEG_TEST_ZYGOTE=0. Output is read at the end
    (`communicate`); `merge_stderr`: stderr goes to stdout. `env` is the whole environment (default: this one's)."""
    env = env if env is not None else dict(os.environ)
    if os.environ.get("SEG_TEST_ZYGOTE", "1") == "0":
        return subprocess.Popen(
            [sys.executable, "-m", module, *args], cwd=cwd or REPO, env=env, text=True, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT if merge_stderr else subprocess.PIPE,
        )  # fmt: skip
    return _zygote().start(module, list(args), cwd or REPO, env, merge_stderr)


class ZygoteProcess:
    """A process forked by the zygote, with the parts of subprocess.Popen the tests use."""

    def __init__(self, zygote: Zygote, pid: int, args: list[str], out: Path, err: Path | None) -> None:
        self.zygote, self.pid, self.args, self.out, self.err = zygote, pid, args, out, err
        self.returncode: int | None = None

    def poll(self) -> int | None:
        self.zygote.pump(0)
        self.returncode = self.zygote.exited.get(self.pid)
        return self.returncode

    def wait(self, timeout: float | None = None, drained: bool = False) -> int:
        """The exit code once the process has ended (`drained`: and every process that inherited its output pipes
        has closed them, as `communicate` waits)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        done = self.zygote.drained if drained else self.zygote.exited
        while self.pid not in done:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise subprocess.TimeoutExpired(self.args, timeout)
            self.zygote.pump(left)
        self.returncode = done[self.pid]
        return self.returncode

    def communicate(self, timeout: float | None = None) -> tuple[str, str | None]:
        self.wait(timeout, drained=True)
        outputs = [path.read_text() if path else None for path in (self.out, self.err)]
        for path in (self.out, self.err):
            if path:
                path.unlink(missing_ok=True)
        return outputs[0], outputs[1]

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class Zygote:
    """The test side of tests/zygote.py: one fork server per test session."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("zygote.py"))], cwd=REPO,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0,
        )  # fmt: skip
        self.outputs = Path(tempfile.mkdtemp(prefix="seg-zygote-"))
        self.pending = b""  # reply bytes read but not yet a whole line
        self.started: dict[int, int] = {}  # request id -> pid
        self.exited: dict[int, int] = {}  # pid -> return code, once the process has ended
        self.drained: dict[int, int] = {}  # pid -> return code, once its output pipes are closed too
        self.requests = 0

    def pump(self, timeout: float | None) -> None:
        """Read the replies that arrive within `timeout` seconds (None: wait for one)."""
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        if not ready:
            return
        chunk = os.read(self.process.stdout.fileno(), 1 << 16)
        if not chunk:
            raise RuntimeError(f"the test zygote (tests/zygote.py) exited with {self.process.wait()}")
        self.pending += chunk
        while b"\n" in self.pending:
            line, self.pending = self.pending.split(b"\n", 1)
            reply = json.loads(line)
            if "exited" in reply:
                self.exited[reply["pid"]] = reply["exited"]
            elif "returncode" in reply:
                self.drained[reply["pid"]] = reply["returncode"]
            else:
                self.started[reply["id"]] = reply["pid"]

    def start(self, module: str, args: list[str], cwd: Path, env: dict[str, str], merge: bool) -> ZygoteProcess:
        self.requests += 1
        n = self.requests
        out = self.outputs / f"{n}.out"
        err = None if merge else self.outputs / f"{n}.err"
        request = {"id": n, "module": module, "args": args, "cwd": str(cwd), "env": env,
                   "stdout": str(out), "stderr": str(err or out)}  # fmt: skip
        self.process.stdin.write(json.dumps(request).encode() + b"\n")
        deadline = time.monotonic() + 300  # the first request waits for the zygote's imports
        while n not in self.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the test zygote (tests/zygote.py) did not start a process in 300 s")
            self.pump(5)
        return ZygoteProcess(self, self.started.pop(n), [module, *args], out, err)


@functools.cache
def _zygote() -> Zygote:
    return Zygote()


def read_csv_columns(path: Path) -> dict[str, list[float]]:
    """A CSV of numbers as {column: values}, in file order."""
    import csv

    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    return {key: [float(r[key]) for r in rows] for key in rows[0]} if rows else {}


def wandb_records(wandb_file: Path) -> list[dict]:
    """Every record of an offline W&B run's .wandb log, as JSON (`wandb leet inspect --json`)."""
    import json

    wandb_cli = Path(sys.executable).with_name("wandb")
    out = subprocess.run(
        [str(wandb_cli), "leet", "inspect", "--json", str(wandb_file)],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout  # fmt: skip
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def wandb_history(wandb_file: Path) -> list[dict]:
    """The logged history rows of an offline W&B run."""
    return [r["history"]["item"] for r in wandb_records(wandb_file) if r.get("type") == "history"]
