"""One writer per folder (seg.claims): a second writer is refused naming the holder, a dead holder's claim is taken
over (same host: pid; other host: heartbeat age), two resumes of one run and two drivers of one study never write
the same run at once. Real processes, killed and stopped with real signals."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from clitools import REPO, cli_env, read_csv_columns, run_cli, start_cli
from configs import compose_config

from seg.claims import CLAIM_FILE, STALE_S, ClaimBusy, Holder, acquire, held, holder_of, read_holder
from seg.rundir import RunDir, Status
from seg.training import train

HOLD = "import sys, time; from pathlib import Path; from seg.claims import acquire; " \
       "acquire(Path(sys.argv[1]), 'holder'); print('held', flush=True); time.sleep(600)"  # fmt: skip


def _write_holder(folder: Path, **fields) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    holder = {"host": socket.gethostname(), "pid": os.getpid(), "pid_start": None, "started": time.time(),
              "command": "someone", "token": "t0", **fields}  # fmt: skip
    (folder / CLAIM_FILE).write_text(json.dumps(holder))
    return folder / CLAIM_FILE


def test_a_second_writer_stops_with_one_line_naming_the_holder(tmp_path: Path) -> None:
    with held(tmp_path / "run", "seg.train"), pytest.raises(ClaimBusy) as e:
        acquire(tmp_path / "run", "seg.train", hint="resume it once it has ended")
    message = str(e.value)
    assert "\n" not in message and f"host {socket.gethostname()}, pid {os.getpid()}, since " in message
    assert "resume it once it has ended" in message
    assert not (tmp_path / "run" / CLAIM_FILE).exists(), "released at the end of the block"
    acquire(tmp_path / "run", "again").release()


def test_a_holder_killed_with_sigkill_is_taken_over(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        with pytest.raises(ClaimBusy, match=f"pid {proc.pid}"):
            acquire(tmp_path, "second")
    finally:
        proc.kill()
        proc.wait()
    claim = acquire(tmp_path, "second")
    assert read_holder(tmp_path / CLAIM_FILE).token == claim.holder.token
    claim.release()


def test_a_holder_that_was_killed_but_not_yet_reaped_is_dead(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        os.kill(proc.pid, signal.SIGKILL)  # a zombie until its parent (this test) reaps it
        deadline = time.monotonic() + 60
        while Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert holder_of(tmp_path) is None
    finally:
        proc.kill()
        proc.wait()


def test_a_reused_pid_is_not_the_holder(tmp_path: Path) -> None:
    _write_holder(tmp_path, pid_start="1")  # this pid runs, but it started at another time
    assert holder_of(tmp_path) is None
    acquire(tmp_path, "new").release()


def test_a_claim_of_another_host_is_dead_only_after_its_heartbeat_age(tmp_path: Path) -> None:
    path = _write_holder(tmp_path, host="node-elsewhere", pid=1)
    with pytest.raises(ClaimBusy, match="host node-elsewhere, pid 1"):
        acquire(tmp_path, "second")
    old = time.time() - STALE_S - 1
    os.utime(path, (old, old))
    acquire(tmp_path, "second").release()


def test_an_earlier_run_of_a_requeued_slurm_job_is_dead(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write_holder(tmp_path, host="node-elsewhere", pid=1, slurm_job="77", slurm_restart=0)
    monkeypatch.setenv("SLURM_JOB_ID", "77")
    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")
    acquire(tmp_path, "requeued").release()


def test_many_takers_of_a_dead_claim_make_exactly_one_holder(tmp_path: Path) -> None:
    old = time.time() - STALE_S - 1
    os.utime(_write_holder(tmp_path, host="node-elsewhere", pid=1), (old, old))
    won, lost, start = [], [], threading.Barrier(8)

    def take() -> None:
        start.wait()
        try:
            won.append(acquire(tmp_path, "taker"))
        except ClaimBusy:
            lost.append(1)

    threads = [threading.Thread(target=take) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert (len(won), len(lost)) == (1, 7)
    assert Holder(**json.loads((tmp_path / CLAIM_FILE).read_text())).token == won[0].holder.token
    won[0].release()


def test_wait_waits_for_the_holder_to_let_go(tmp_path: Path) -> None:
    first = acquire(tmp_path, "first")
    threading.Timer(0.3, first.release).start()
    acquire(tmp_path, "second", wait=True).release()


SMALL = ["debug=smoke", "data=synthetic", "logger=none", "trainer.test_after_fit=false", "scheduler=none"]


@pytest.mark.slow
def test_two_resumes_of_one_run_one_refuses_and_the_run_stays_consistent(tmp_path: Path, cli_paths: list[str]) -> None:
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    assert train(compose_config(*SMALL, *cli_paths), run).status == Status.COMPLETED
    args = [f"resume={run.path}", "trainer.epochs=2", f"paths.output_dir={tmp_path / 'out'}", *cli_paths]
    first = start_cli("seg.train", *args, env=cli_env({"OMP_NUM_THREADS": "1"}))
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and (holder_of(run.path) is None or holder_of(run.path).pid != first.pid):
            assert first.poll() is None, first.communicate()
            time.sleep(0.05)
        first.send_signal(signal.SIGSTOP)  # the first resume holds the run, stopped wherever it was
        before = {p: p.stat().st_mtime_ns for p in run.path.rglob("*") if p.is_file()}
        second = run_cli("seg.train", *args, env={"OMP_NUM_THREADS": "1"})
        assert second.returncode == 2, second.stderr[-2000:]
        assert f"is being written by seg.train (host {socket.gethostname()}, pid {first.pid}, since" in second.stderr
        assert "Traceback" not in second.stderr
        assert {p: p.stat().st_mtime_ns for p in run.path.rglob("*") if p.is_file()} == before, "nothing written"
    finally:
        first.send_signal(signal.SIGCONT)
    out, err = first.communicate(timeout=300)
    assert first.returncode == 0, err[-3000:]
    assert read_csv_columns(run.metrics)["epoch"] == [1, 2]
    assert run.read_summary().epochs == 2 and not (run.path / CLAIM_FILE).exists()


TINY_STUDY = {
    "experiment/tiny_aug.yaml": "# @package _global_\nname: tiny_aug\nablation:\n  factor: augmentation\n"
                                "  values: [none, basic]\n  baseline: none\n",
    "study/tiny.yaml": "# @package _global_\ndefaults:\n  - override /hydra/sweeper: seg_study\nstudy:\n"
                       "  name: tiny\n  experiments: [tiny_aug]\n  seeds: [0, 1]\n",
}  # fmt: skip


@pytest.mark.slow
def test_two_study_drivers_train_every_run_once_and_finish_the_study(tmp_path: Path, cli_paths: list[str]) -> None:
    """One driver through the joblib launcher (2 jobs at once), one through the basic launcher, same study dir."""
    for name, text in TINY_STUDY.items():
        (tmp_path / "conf" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "conf" / name).write_text(text)
    study = tmp_path / "study"
    args = ["-m", "study=tiny", f"hydra.searchpath=[file://{tmp_path / 'conf'}]", *SMALL,
            f"hydra.sweep.dir={study}", f"paths.output_dir={tmp_path}", *cli_paths]  # fmt: skip
    env = cli_env({"OMP_NUM_THREADS": "1"})
    drivers = [start_cli("seg.train", *args, *launcher, env=env, merge_stderr=True)
               for launcher in (["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"], [])]  # fmt: skip
    outputs = [d.communicate(timeout=600)[0] for d in drivers]
    assert [d.returncode for d in drivers] == [0, 0], outputs[0][-3000:] + outputs[1][-3000:]
    runs = [RunDir(p) for p in (study / "runs").iterdir()]
    assert len(runs) == 4
    for run in runs:
        assert run.read_summary().status == Status.COMPLETED, run.path
        assert read_csv_columns(run.metrics)["epoch"] == [1], f"{run.path} trained more than once"
    assert not list(study.rglob(CLAIM_FILE)) and not (study / "attempts").exists()
    invocations = json.loads((study / "study.json").read_text())["invocations"]
    assert len(invocations) == 2
    assert sum(i.get("new", 0) for i in invocations) >= 4, "every run was planned by at least one driver"
    assert (study / "report.md").is_file()


def test_study_wait_waits_for_a_run_another_command_holds_then_trains_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run held by another live process is left to it; with study.wait=true the study waits for it to let go
    (here: it is killed before it finished) and then trains it."""
    import hydra
    from configs import CONF

    from seg.rundir import Summary
    from seg.study import runner
    from seg.study.results import StudyRecord

    def compose(overrides: list[str]):
        with hydra.initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            return hydra.compose("train", overrides=overrides, return_hydra_config=True)

    launched: list[str] = []

    def launch(batch: list[list[str]]) -> None:
        for overrides in batch:
            run = RunDir(tmp_path / dict(o.split("=", 1) for o in overrides)["hydra.sweep.subdir"])
            run.write_summary(Summary(Status.COMPLETED, str(run.path), 0.6, 1, 1, 2.0, test={"dice": 0.6}))
            launched.append(run.path.name)

    args = ["study=ablations", "study.experiments=[ablation_architecture]", "study.seeds=[0]"]
    config = compose([*args, f"hydra.sweep.dir={tmp_path}"])
    with pytest.raises(runner.StudyFailed):  # nothing launched: planned only
        runner.run_study(config, args, compose, lambda batch: None)
    keys = [j.key for j in StudyRecord.load(tmp_path).jobs]
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path / "runs" / keys[1])], cwd=REPO,
                              stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        record = runner.run_study(config, args, compose, launch)
        assert launched == [keys[0]] and record.invocations[-1]["held"] == 1, "the held run is left to its holder"
        monkeypatch.setattr(runner, "WAIT_POLL_S", 0.05)
        threading.Timer(0.5, lambda: (holder.kill(), holder.wait())).start()
        config = compose([*args, "study.wait=true", f"hydra.sweep.dir={tmp_path}"])
        record = runner.run_study(config, [*args, "study.wait=true"], compose, launch)
    finally:
        holder.kill()
        holder.wait()
    assert launched == [keys[0], keys[1]], "waited for the holder, then trained the run it left"
    assert all(RunDir(tmp_path / "runs" / k).read_summary().status == Status.COMPLETED for k in keys)
