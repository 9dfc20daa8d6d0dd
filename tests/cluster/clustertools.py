"""Helpers of the cluster tests: SLURM's clients (squeue, sacct, scancel) and the requeue app in the background."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from seg.rundir import RunDir, Summary

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
REQUEUE_APP = HERE / "requeue_app.py"
T = TypeVar("T")


def slurm_env() -> dict[str, str]:
    """The environment of a SLURM client: SLURM_CONF of scripts/cluster/slurm_up.sh's cluster."""
    state = os.environ.get("SEG_SLURM_STATE", "/tmp/seg-slurm")
    return {**os.environ, "SLURM_CONF": os.environ.get("SLURM_CONF", f"{state}/slurm.conf")}


def run(*cmd: str, timeout: int = 60) -> str:
    """Run a SLURM client command; its stdout (an assertion error with its output when it fails)."""
    out = subprocess.run(cmd, env=slurm_env(), capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, f"{' '.join(cmd)} failed ({out.returncode}):\n{out.stderr}{out.stdout}"
    return out.stdout


def sacct(job: str) -> list[dict[str, str]]:
    """sacct's records of the allocations of job `job` (an array's tasks too), every run of a requeued task."""
    fields = "JobID,JobName,Partition,State,ExitCode,AllocCPUS,ReqMem,Start,End,Elapsed"
    out = run("sacct", "--jobs", job, "--allocations", "--duplicates", "--parsable2", "--format", fields)
    return list(csv.DictReader(out.splitlines(), delimiter="|"))


def sacct_settled(job: str, timeout: float = 60.0) -> list[dict[str, str]]:
    """sacct's records of `job` once it has left the queue and slurmdbd has recorded how every run ended (the
    driver of a sweep returns as soon as the jobs wrote their results, a moment before either)."""

    def settled() -> list[dict[str, str]] | None:
        if squeue(job):
            return None
        records = sacct(job)
        return records if records and not {r["State"] for r in records} & UNSETTLED else None

    return wait_for(f"end of job {job} in squeue and sacct", settled, timeout=timeout)


UNSETTLED = {"PENDING", "RUNNING", "COMPLETING", "CONFIGURING", "SUSPENDED"}


def squeue(job: str) -> list[str]:
    """The ids of job `job`'s tasks still pending or running."""
    return run("squeue", "--noheader", "--jobs", job, "--format", "%i").split()


def wait_for(what: str, get: Callable[[], T | None], timeout: float = 120.0) -> T:
    """Poll `get` every half second until it returns something, and return that."""
    deadline = time.monotonic() + timeout
    while (found := get()) is None:
        assert time.monotonic() < deadline, f"no {what} after {timeout:.0f} s"
        time.sleep(0.5)
    return found


def array_tasks(sweep_dir: Path) -> list[str]:
    """The SLURM ids of a sweep's jobs (`<array id>_<task>`), from the folders where submitit pickled them."""
    return sorted(p.parent.name for p in (sweep_dir / ".submitit").glob("*/*_submitted.pkl"))


def submitit_log(sweep_dir: Path, task: str) -> str:
    """What submitit logged in job `task` (stdout and stderr, every attempt: the logs are appended to)."""
    folder = sweep_dir / ".submitit" / task
    return "".join(p.read_text() for p in sorted(folder.glob(f"{task}_0_log.*")))


def start(*args: str, python: Path | str = sys.executable, env: dict[str, str] | None = None) -> subprocess.Popen:
    """`python <args>` from the repository in the background, as a SLURM client (stdout and stderr piped together;
    read them with `finish`), W&B offline."""
    return subprocess.Popen(
        [str(python), *args],
        cwd=REPO,
        env={**slurm_env(), "OMP_NUM_THREADS": "1", "WANDB_MODE": "offline", **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def start_requeue_app(out: Path, *overrides: str) -> subprocess.Popen:
    """`python tests/cluster/requeue_app.py -m hydra/launcher=slurm out=<out> ...` in the background."""
    conf = f"hydra.searchpath=[file://{REPO}/conf]"
    return start(str(REQUEUE_APP), "-m", conf, "hydra/launcher=slurm", f"out={out}", *overrides)


SMOKE = ["debug=smoke", "data=synthetic", "logger=none"]


def tiny_study(out: Path, *overrides: str) -> tuple[list[str], Path]:
    """The arguments of `-m seg.train -m study=tiny` (tests/test_study.py's study: ablations of augmentation and of
    the scheduler, 2 seeds: 8 jobs, 6 unique runs) at smoke size, writing under `out`; and its study directory."""
    from test_study import STUDY_CONF

    conf = out / "conf"
    for name, text in STUDY_CONF.items():
        (conf / name).parent.mkdir(parents=True, exist_ok=True)
        (conf / name).write_text(text)
    study = out / "studies" / "tiny"  # where study=ablations puts its study: ${paths.output_dir}/studies/<name>
    args = ["-m", "seg.train", "-m", "study=tiny", f"hydra.searchpath=[file://{conf}]", *SMOKE]
    return [*args, f"hydra.sweep.dir={study}", f"paths.output_dir={out}", *overrides], study


def study_runs(study_dir: Path) -> dict[str, Summary | None]:
    """{run key: its summary} of the runs in a study directory."""
    return {p.name: RunDir(p).read_summary() for p in sorted((study_dir / "runs").glob("*"))}


def last_invocation(study_dir: Path) -> dict:
    """What study.json records of the study's last command: jobs, runs, and runs new/skip/resume/rerun."""
    return json.loads((study_dir / "study.json").read_text())["invocations"][-1]


def finish(proc: subprocess.Popen, timeout: int = 300) -> tuple[int, str]:
    """Wait for a background sweep; its exit code and output (killed, and an assertion error, after `timeout`)."""
    try:
        output, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        output, _ = proc.communicate()
        raise AssertionError(f"the sweep did not finish in {timeout} s:\n{output[-3000:]}") from None
    return proc.returncode, output


def attempts(job_dir: Path) -> list[dict]:
    """The records requeue_app.py appended to `job_dir`/attempts.jsonl, one per attempt of the job."""
    log = job_dir / "attempts.jsonl"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def sweep_dir_of(out: Path) -> Path | None:
    """The one time-stamped sweep folder requeue_app.py made under `out`/multirun, once it exists."""
    found = list((out / "multirun").glob("*"))
    return found[0] if len(found) == 1 else None
