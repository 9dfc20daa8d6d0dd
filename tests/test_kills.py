"""Killed jobs: a study whose launcher lost a job (joblib's TerminatedWorkerError when the OOM killer or a SIGKILL
took a worker) records the run as killed, goes on and says what to rerun; no loader worker outlives its run's
main process, even one killed with SIGKILL while its workers are busy."""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import time
from pathlib import Path

import hydra
import pytest
from clitools import cli_env, read_csv_columns, start_cli
from configs import CONF, compose_config
from joblib.externals.loky.process_executor import TerminatedWorkerError
from loader_workers import Items
from omegaconf import DictConfig

import seg.files
from seg.claims import holder_of
from seg.errors import find_user_error
from seg.resume import resume_run
from seg.rundir import RunDir, Status, Summary, load_checkpoint
from seg.study.runner import Action, next_action, run_study
from seg.training import train


def _compose_with_hydra(overrides: list[str]) -> DictConfig:
    with hydra.initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return hydra.compose("train", overrides=overrides, return_hydra_config=True)


def test_a_killed_study_job_is_recorded_and_the_study_goes_on(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """The launcher finishes one run, leaves the other `running` (its process gone) and raises as joblib does."""

    def launch(batch: list[list[str]]) -> None:
        for n, overrides in enumerate(batch):
            given = dict(o.split("=", 1) for o in overrides)
            run = RunDir(tmp_path / given["hydra.sweep.subdir"])
            status = Status.COMPLETED if n == 0 else Status.RUNNING
            run.write_summary(Summary(status, str(run.path), 0.6, 1, 1, 2.0, test={"dice": 0.6}))
            run.last.parent.mkdir(parents=True, exist_ok=True)
            run.last.write_bytes(b"last.pt of epoch 1")
        raise TerminatedWorkerError("A worker process managed by the executor was unexpectedly terminated.")

    args = ["study=ablations", "study.experiments=[ablation_architecture]", "study.seeds=[0]"]
    record = run_study(_compose_with_hydra([*args, f"hydra.sweep.dir={tmp_path}"]), args, _compose_with_hydra, launch)
    killed = RunDir(tmp_path / "runs" / record.jobs[1].key)
    summary = killed.read_summary()
    assert summary.status == Status.KILLED and "killed after epoch 1 (SIGKILL, out of memory" in summary.error
    assert next_action(killed) == Action.RESUME, "the next command resumes it"
    out = capsys.readouterr().out
    assert f"1 runs did not finish ({killed.path.name}: killed); run the same command again" in out
    assert record.invocations[-1]["launcher_errors"] == 1 and (tmp_path / "report.md").is_file()


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _loader_workers(*args: str):
    """tests/loader_workers.py started as a command (see there)."""
    return start_cli("loader_workers", *args, cwd=Path(__file__).parent, env=cli_env({"OMP_NUM_THREADS": "1"}))


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads worker states from /proc")
def test_no_loader_worker_outlives_its_run_killed_with_sigkill(tmp_path: Path) -> None:
    main = _loader_workers("busy", str(tmp_path / "workers"))
    deadline = time.monotonic() + 120
    while not (tmp_path / "workers").is_file() and time.monotonic() < deadline:
        assert main.poll() is None, main.communicate()
        time.sleep(0.02)
    workers = [int(pid) for pid in (tmp_path / "workers").read_text().split()]
    assert len(workers) == 2 and all(_running(pid) for pid in workers)
    main.send_signal(signal.SIGKILL)
    main.wait()
    deadline = time.monotonic() + 60  # the workers sleep 300 s: without the fix they are still there then
    while any(_running(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = [pid for pid in workers if _running(pid)]
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert not left, "loader workers outlived their main process"


SMALL = ["debug=smoke", "data=synthetic", "logger=none", "trainer.test_after_fit=false", "scheduler=none"]


def test_a_full_disk_while_writing_last_pt_is_one_line_and_the_summary_matches_last_pt(
    tmp_path: Path, cli_paths: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Epoch 2's last.pt meets a full disk (then space is freed): one line naming the file and the free space;
    summary.json says 1 epoch, as last.pt holds; resume then finishes the run."""
    real_fsync, failed = os.fsync, []

    def fsync(fd: int) -> None:
        if not failed and Path(os.readlink(f"/proc/self/fd/{fd}")).name.startswith(".last.pt.") and _epochs(run) == 2:
            failed.append(fd)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    monkeypatch.setattr(seg.files.os, "fsync", fsync)
    with pytest.raises(OSError) as e:
        train(compose_config(*SMALL, "trainer.epochs=2", *cli_paths), run)
    line = str(find_user_error(e.value))
    assert failed and line.startswith(f"No space left on device: {run.last} (") and "GiB free on the disk of" in line
    assert "\n" not in line
    summary = run.read_summary()
    assert summary.status == Status.FAILED and summary.epochs == load_checkpoint(run.last).epoch == 1
    monkeypatch.setattr(seg.files.os, "fsync", real_fsync)
    command = [f"resume={run.path}", *cli_paths]
    resumed = resume_run(compose_config(*command), command)
    assert train(resumed.config, run, resume=resumed).epochs == 2
    assert [int(e) for e in read_csv_columns(run.metrics)["epoch"]] == [1, 2]


def _epochs(run: RunDir) -> int:
    return len(run.metrics.read_text().splitlines()) - 1 if run.metrics.is_file() else 0


def test_a_run_with_loader_workers_exits_when_it_ends() -> None:
    """The interpreter's exit stops the persistent workers (multiprocessing terminates them with SIGTERM)."""
    done = _loader_workers("quick")
    out, err = done.communicate(timeout=120)
    assert (done.returncode, out.strip()) == (0, "6"), err[-2000:]


def _forks(pid: int) -> list[int]:
    """The children of `pid` that are forks of it (same command line): a run's loader workers."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        own = Path(f"/proc/{pid}/cmdline").read_bytes()
        return [int(c) for c in children if Path(f"/proc/{c}/cmdline").read_bytes() == own]
    except OSError:
        return []


@pytest.mark.skipif(not Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children").exists(), reason="reads /proc")
def test_sigterm_while_loader_workers_start_stops_the_run_in_seconds(tmp_path: Path, cli_paths: list[str]) -> None:
    """SIGTERM as the resumed run's first loader worker forks (the run holds its claim, so a heartbeat thread runs):
    exit 143 within seconds, one line with the resume command, last.pt and the records at epoch 1, no worker left.
    It was raised inside logging's fork handler, which dropped it: the run trained on to the end."""
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    train(compose_config(*SMALL, *cli_paths), run)
    args = [f"resume={run.path}", "trainer.epochs=30", "data.num_workers=2", f"paths.output_dir={tmp_path / 'out'}"]
    proc = start_cli("seg.train", *args, *cli_paths, env=cli_env({"OMP_NUM_THREADS": "1"}))
    try:
        deadline, workers = time.monotonic() + 120, []
        while not workers and proc.poll() is None and time.monotonic() < deadline:
            claimed = holder_of(run.path) is not None  # after the signal handlers are set, before the data
            workers = _forks(proc.pid) if claimed else []
            time.sleep(0.002)
        assert workers, proc.communicate()
        proc.send_signal(signal.SIGTERM)
        sent = time.monotonic()
        _, err = proc.communicate(timeout=60)
        took = time.monotonic() - sent
    finally:
        proc.kill()
    resume = f"continue with: python -m seg.train resume={run.path.resolve()}"
    assert proc.returncode == 143 and took < 15, (proc.returncode, took, err[-3000:])
    assert [line for line in err.splitlines() if line.strip()] == [
        f"interrupted (SIGTERM): {run.last} holds epoch 1; {resume}"
    ]
    assert load_checkpoint(run.last).epoch == 1 and read_csv_columns(run.metrics)["epoch"] == [1]
    summary = run.read_summary()
    assert (summary.status, summary.error, summary.epochs) == (Status.INTERRUPTED, "SIGTERM after epoch 1", 1)
    assert not [pid for pid in workers if _running(pid)], "a loader worker outlived its run"


@pytest.fixture
def stop_signals() -> None:
    """This process's SIGINT/SIGTERM raise Interrupted for the test (seg.train's handlers), then as they were."""
    from seg.engine import stopping

    previous = {s: signal.getsignal(s) for s in stopping.STOP_SIGNALS}
    stopping.stop_signals_interrupt()
    yield
    stopping._received.clear()
    for signum, handler in previous.items():
        signal.signal(signum, handler)


def test_a_stop_signal_held_while_workers_start_is_raised_when_they_have(stop_signals: None) -> None:
    from seg.engine.stopping import Interrupted, stop_signals_held

    with pytest.raises(Interrupted, match="SIGTERM"), stop_signals_held():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.01)  # a Python handler would have run by now: it only noted the signal
        held = True
    assert held


def test_a_stop_signal_whose_exception_was_lost_stops_the_loader_at_the_next_batch(stop_signals: None) -> None:
    """Python drops an exception raised in a fork handler or a finalizer ("Exception ignored in ..."); the loader
    raises it again before its next batch."""
    from seg.engine import stopping
    from seg.engine.runtime import make_loader

    batches = iter(make_loader(Items(n=8), 2, 0, False, False))
    next(batches)
    with contextlib.suppress(stopping.Interrupted):  # as Python does in a finalizer
        stopping._raise_interrupted(signal.SIGTERM, None)
    with pytest.raises(stopping.Interrupted, match="SIGTERM"):
        next(batches)
