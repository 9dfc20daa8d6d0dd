"""The SLURM launcher (conf/hydra/launcher/slurm.yaml, hydra-submitit-launcher) on the single-node cluster that
scripts/cluster/slurm_up.sh starts: a seg sweep as an array job; what happens to a job that is preempted or
reaches its time limit (submitit requeues it; Hydra re-runs the same job directory with the same overrides, and
seg.train continues the run from its last.pt); a study as array jobs, cancelled and submitted again; an Optuna
search as two workers on one study. Run by `make test-cluster`; skipped unless SEG_CLUSTER lists slurm
(tests/cluster/conftest.py)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import optuna
from clitools import run_cli
from clustertools import (
    SMOKE,
    array_tasks,
    attempts,
    finish,
    last_invocation,
    run,
    sacct_settled,
    slurm_env,
    squeue,
    start,
    start_requeue_app,
    study_runs,
    submitit_log,
    sweep_dir_of,
    tiny_study,
    wait_for,
)
from optuna.trial import TrialState

from seg.rundir import RunDir, Status
from seg.study.runner import next_action
from seg.sweep.storage import WORKER, counted_trials

# what one job asks for on this CPU cluster (slurm.yaml asks for a GPU node: 8 CPUs, 1 GPU, 32 GB)
CPU_JOB = ["hydra.launcher.cpus_per_task=1", "hydra.launcher.mem_gb=1", "hydra.launcher.timeout_min=60"]
# seg's jobs on this cluster: no GPU (no --gpus-per-node at all), 1 CPU, 1 GB, 1 hour
SLURM_JOB = ["hydra/launcher=slurm", "hydra.launcher.gpus_per_node=null", *CPU_JOB]


def states(records: list[dict[str, str]]) -> dict[str, list[str]]:
    """{task id: the states of its runs, in order} from sacct records."""
    out: dict[str, list[str]] = {}
    for r in records:
        out.setdefault(r["JobID"], []).append(r["State"])
    return out


def test_seg_sweep_runs_as_array_jobs(tmp_path: Path, cli_paths: list[str], slurm_cluster: str) -> None:
    result = run_cli(
        "seg.train",
        "-m",
        "hydra/launcher=slurm",
        *SMOKE,
        "seed=0,1",
        "hydra.launcher.gpus_per_node=0",
        *CPU_JOB,
        "hydra.launcher.mem_gb=2",
        f"paths.output_dir={tmp_path}",
        *cli_paths,
        env=slurm_env(),
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:] + result.stdout[-3000:]
    [sweep_dir] = (tmp_path / "multirun" / "default").iterdir()

    # one array job, one task per job of the sweep, both done and nothing left in the queue
    tasks = array_tasks(sweep_dir)
    array_id = tasks[0].split("_")[0]
    assert tasks == [f"{array_id}_0", f"{array_id}_1"], tasks
    records = sacct_settled(array_id)
    assert states(records) == {tasks[0]: ["COMPLETED"], tasks[1]: ["COMPLETED"]}, records
    for r in records:
        assert (r["ExitCode"], r["AllocCPUS"], r["ReqMem"], r["Partition"]) == ("0:0", "1", "2G", slurm_cluster), r
    # two 1-CPU jobs on a node of 2 or more CPUs run side by side
    assert max(r["Start"] for r in records) < min(r["End"] for r in records), records
    script = (sweep_dir / ".submitit" / array_id / f"{array_id}_submission.sh").read_text()
    assert "#SBATCH --array=0-1%2" in script and "#SBATCH --gpus-per-node=0" in script, script

    # the outputs of each job in its directory of the shared sweep folder
    for job in (0, 1):
        job_dir = sweep_dir / str(job)
        assert json.loads((job_dir / "summary.json").read_text())["status"] == "completed"
        assert (job_dir / "checkpoints" / "last.pt").is_file()
        assert f"seed={job}" in (job_dir / ".hydra" / "overrides.yaml").read_text()
        assert "Job completed successfully" in submitit_log(sweep_dir, tasks[job])


def test_gpu_job_is_refused_by_a_cluster_without_gpus(tmp_path: Path, slurm_cluster: str) -> None:
    """slurm.yaml's default gpus_per_node=1 fails at submission, with sbatch's reason."""
    proc = start_requeue_app(tmp_path, "seed=0,1", "sleep_s=0", *CPU_JOB)
    code, output = finish(proc, timeout=120)
    assert code != 0
    assert "sbatch: error: Invalid generic resource (gres) specification" in output, output[-3000:]


def requeue_sweep(out: Path, *overrides: str) -> tuple[subprocess.Popen, Path, dict]:
    """Start a 2-job requeue_app sweep whose job 0 sleeps; return it, its sweep folder and job 0's first record."""
    proc = start_requeue_app(out, "seed=0,1", "sleep_jobs=[0]", "hydra.launcher.gpus_per_node=null", *overrides)
    sweep_dir = wait_for("sweep folder", lambda: sweep_dir_of(out), timeout=60)
    first = wait_for("first attempt of job 0", lambda: (attempts(sweep_dir / "0") or [None])[0], timeout=120)
    return proc, sweep_dir, first


def check_requeued(sweep_dir: Path, first: dict) -> list[dict]:
    """Job 0 ran twice, in the same directory with the same overrides; job 1 once. Returns job 0's records."""
    runs = attempts(sweep_dir / "0")
    assert len(runs) == 2, runs
    again = runs[1]
    same = ("run_dir", "job_num", "job_id", "overrides", "SLURM_JOB_ID")
    assert {k: again[k] for k in same} == {k: first[k] for k in same}, runs
    assert again["run_dir"] == str(sweep_dir / "0")
    assert (first["SLURM_RESTART_COUNT"], again["SLURM_RESTART_COUNT"]) == (None, "1")
    assert again["pid"] != first["pid"]
    assert len(attempts(sweep_dir / "1")) == 1
    task = first["job_id"]
    assert states(sacct_settled(task))[task] == ["REQUEUED", "COMPLETED"]
    return runs


def test_preempted_job_is_requeued_into_its_job_dir(tmp_path: Path, slurm_cluster: str) -> None:
    """A job of partition `urgent` preempts job 0 of the sweep: SLURM sends it SIGUSR2, submitit's handler
    calls the launcher's checkpoint() (same arguments) and `scontrol requeue`s it; it runs again later."""
    proc, sweep_dir, first = requeue_sweep(tmp_path, "sleep_s=300", *CPU_JOB)
    assert (first["SLURM_CPUS_PER_TASK"], first["OMP_NUM_THREADS"]) == ("1", "1"), "slurm.yaml's setup line"
    task = first["job_id"]
    assert "_" in task, f"an array task, not {task}"
    # job 1 returns at once; then job 0 alone runs
    wait_for("job 1 to finish", lambda: squeue(task.split("_")[0]) == [task] or None, timeout=120)

    # a job in partition urgent that needs every CPU of the node: job 0 must make room
    cpus = run("sinfo", "--noheader", "--partition", "urgent", "--format", "%c").split()[0]
    run("srun", "--partition=urgent", f"--cpus-per-task={cpus}", "--mem=100M", "true", timeout=120)

    code, output = finish(proc)
    assert code == 0, output[-3000:]
    runs = check_requeued(sweep_dir, first)
    assert all(r["overrides"] == ["out=" + str(tmp_path), "seed=0", "sleep_jobs=[0]", "sleep_s=300"] for r in runs)
    log = submitit_log(sweep_dir, task)
    assert "this job is preempted" in log and f"Requeued job {task}" in log, log


def test_timed_out_job_is_requeued_if_max_num_timeout(tmp_path: Path, slurm_cluster: str) -> None:
    """Job 0 reaches its 1-minute limit: SIGUSR2 comes signal_delay_s before it (SLURM may send it up to a
    minute early); submitit counts a timeout and, with max_num_timeout=1, requeues the job once."""
    timeout = ["hydra.launcher.timeout_min=1", "hydra.launcher.signal_delay_s=30"]
    proc, sweep_dir, first = requeue_sweep(
        tmp_path, "sleep_s=300", *CPU_JOB, *timeout, "hydra.launcher.max_num_timeout=1"
    )
    code, output = finish(proc, timeout=240)
    assert code == 0, output[-3000:]
    check_requeued(sweep_dir, first)
    assert "this job is timed-out" in submitit_log(sweep_dir, first["job_id"])


def test_timed_out_job_fails_the_sweep_if_max_num_timeout_is_0(tmp_path: Path, slurm_cluster: str) -> None:
    """max_num_timeout=0: a job at its time limit is not requeued and the sweep fails (note: submitit counts any
    SIGUSR2 as a timeout when timeout_min <= 10, since it guarantees min(80%, limit - 10 min))."""
    timeout = ["hydra.launcher.timeout_min=1", "hydra.launcher.signal_delay_s=30", "hydra.launcher.max_num_timeout=0"]
    proc, sweep_dir, first = requeue_sweep(tmp_path, "sleep_s=300", *CPU_JOB, *timeout)
    code, output = finish(proc, timeout=240)
    assert code != 0
    assert "Job not requeued because: timed-out too many times" in output, output[-3000:]
    assert len(attempts(sweep_dir / "0")) == 1
    assert "REQUEUED" not in states(sacct_settled(first["job_id"]))[first["job_id"]]


def epochs(run: RunDir) -> list[int]:
    """The epoch column of a run's metrics.csv."""
    return [int(line.split(",", 1)[0]) for line in run.metrics.read_text().splitlines()[1:]]


def logged_epochs(log: str) -> list[int]:
    """The epochs a train.log reports as finished, in order (a line logged twice counted once)."""
    return list(dict.fromkeys(int(e) for e in re.findall(r"\bepoch (\d+)/\d+ ", log)))


def test_preempted_training_resumes_from_its_last_epoch(
    tmp_path: Path, cli_paths: list[str], slurm_cluster: str
) -> None:
    """A seg job preempted mid-training (submitit requeues it on SIGUSR2) runs again in its job directory, where
    seg.train finds last.pt and SLURM_RESTART_COUNT=1: it continues after the last finished epoch, and the sweep's
    driver waits for that second run (it returns the second run's result, not one of the first run's exit)."""
    total = 80
    args = ["-m", "seg.train", "-m", *SLURM_JOB, *SMOKE, "seed=0", f"trainer.epochs={total}"]
    driver = start(*args, f"paths.output_dir={tmp_path}", *cli_paths)
    try:
        job = RunDir(wait_for("job 0's folder", lambda: next(tmp_path.glob("multirun/default/*/0"), None), 120))
        wait_for("3 finished epochs", lambda: job.last.is_file() and len(epochs(job)) >= 3 or None, 180)
        cpus = run("sinfo", "--noheader", "--partition", "urgent", "--format", "%c").split()[0]
        run("srun", "--partition=urgent", f"--cpus-per-task={cpus}", "--mem=100M", "true", timeout=120)
    finally:
        code, output = finish(driver, timeout=300)
    assert code == 0, output[-3000:]
    [task] = array_tasks(job.path.parent)
    assert states(sacct_settled(task))[task] == ["REQUEUED", "COMPLETED"]
    assert "this job is preempted" in submitit_log(job.path.parent, task)

    summary = job.read_summary()
    assert (summary.status, summary.epochs) == (Status.COMPLETED, total), summary
    assert epochs(job) == list(range(1, total + 1)), "metrics.csv: each epoch once, in order"
    log = job.log.read_text()
    assert log.count("Resumed") >= 1, log[-3000:]
    before, after = log.split("Resumed", 1)
    k = int(re.match(rf" {re.escape(str(job.path))} after epoch (\d+)", after).group(1))
    first = logged_epochs(before)
    assert first[0] == 1 and 1 <= k <= first[-1] < total, (k, first)
    assert logged_epochs(after) == list(range(k + 1, total + 1)), "the second run starts at epoch k+1, not 1"
    assert "Sweep summary (1 of 1 jobs finished)" in output, output[-3000:]


def test_study_runs_as_array_jobs_and_resumes_after_scancel(
    tmp_path: Path, cli_paths: list[str], slurm_cluster: str
) -> None:
    """The tiny study's 6 runs go to SLURM as one array. Cancelled mid-way (`scancel` of the array, the driver
    killed) and submitted again with the same command: no completed run runs again, the interrupted ones
    continue from last.pt, the cancelled ones that never started run; the report is written."""
    total = 30
    args, study = tiny_study(tmp_path, f"trainer.epochs={total}", *SLURM_JOB, *cli_paths)
    driver = start(*args)

    def mid_study() -> tuple[list[str], list[str]] | None:
        assert driver.poll() is None, f"the study ended before it was cancelled:\n{driver.stdout.read()[-3000:]}"
        runs = study_runs(study) if (study / "runs").is_dir() else {}
        done = [k for k, s in runs.items() if s is not None and s.status == Status.COMPLETED]
        between = [k for k, s in runs.items() if s is not None and s.status == Status.RUNNING
                   and RunDir(study / "runs" / k).last.is_file()]  # fmt: skip
        return (done, between) if done and between else None

    try:
        wait_for("a completed run and a run between epochs", mid_study, timeout=400)
        [array] = {task.split("_")[0] for task in array_tasks(study)}
        run("scancel", array)
        wait_for(f"array {array} to leave the queue", lambda: not squeue(array) or None, timeout=60)
    finally:
        driver.kill()
        finish(driver)
    script = (study / ".submitit" / array / f"{array}_submission.sh").read_text()
    assert "#SBATCH --array=0-5%6" in script, script
    # (a run whose summary says completed may still have been exiting when its task was cancelled)
    assert any(r["State"].startswith("CANCELLED") for r in sacct_settled(array)), sacct_settled(array)

    runs = study_runs(study)
    completed = {k: (study / "runs" / k / "summary.json").stat().st_mtime_ns
                 for k, s in runs.items() if s is not None and s.status == Status.COMPLETED}  # fmt: skip
    resumable = [k for k in runs if next_action(RunDir(study / "runs" / k)) == "resume"]
    assert completed and resumable, runs

    code, output = finish(start(*args), timeout=600)
    assert code == 0, output[-3000:]
    last = last_invocation(study)
    assert (last["jobs"], last["runs"]) == (8, 6), last
    assert (last["skip"], last["resume"]) == (len(completed), len(resumable)), last
    assert last["skip"] + last["resume"] + last.get("rerun", 0) + last.get("new", 0) == 6, last
    for key, mtime in completed.items():
        assert (study / "runs" / key / "summary.json").stat().st_mtime_ns == mtime, f"completed run {key} ran again"
    for key in resumable:
        resumed = RunDir(study / "runs" / key)
        assert epochs(resumed) == list(range(1, total + 1)), key
        assert re.search(r"Resumed .* after epoch [1-9]", resumed.log.read_text()), key
    assert all(s is not None and s.status == Status.COMPLETED and s.epochs == total for s in study_runs(study).values())
    # the second command: one more array, of the runs it launched only
    [second] = {task.split("_")[0] for task in array_tasks(study)} - {array}
    assert {r["State"] for r in sacct_settled(second)} == {"COMPLETED"}
    assert len(array_tasks(study)) == 6 + 6 - len(completed)
    report = (study / "report.md").read_text()
    assert "tiny_aug: basic vs none" in report and "tiny_sched: none vs cosine" in report
    assert f"Study report: {study / 'report.md'}" in output


def test_optuna_workers_share_one_study_through_slurm(tmp_path: Path, cli_paths: list[str], slurm_cluster: str) -> None:
    """Two search processes on one sqlite study (the local disk is this cluster's shared storage), each running
    its trials as SLURM jobs: the study ends with n_trials finished trials over both, each worker ran some."""
    args = [
        "-m", "seg.train", "-m", "hparams_search=lr_optuna", *SMOKE, "trainer.epochs=2", "hydra.sweeper.n_trials=4",
        "hydra.sweeper.heartbeat_interval=2", "hydra.sweeper.grace_period=60", *SLURM_JOB,
        f"paths.output_dir={tmp_path}", *cli_paths,
    ]  # fmt: skip
    a = start(*args)
    try:
        # worker A has created the study and submitted its first trial's job: B joins it
        wait_for("worker A's first job", lambda: next(tmp_path.glob("multirun/lr_optuna/*/.submitit/*"), None), 180)
        b = start(*args)
        code_b, out_b = finish(b, timeout=600)
    finally:
        code_a, out_a = finish(a, timeout=600)
    assert (code_a, code_b) == (0, 0), out_a[-3000:] + out_b[-3000:]

    study = optuna.load_study(study_name="lr_optuna", storage=f"sqlite:///{tmp_path}/optuna/lr_optuna.db")
    assert len(counted_trials(study)) == 4 and all(t.state == TrialState.COMPLETE for t in study.trials), study.trials
    assert {t.user_attrs[WORKER].rsplit(":", 1)[1] for t in study.trials} == {str(a.pid), str(b.pid)}
    # every trial ran as a SLURM job, in the job folder named by its number
    sweep_dirs = list((tmp_path / "multirun" / "lr_optuna").iterdir())
    tasks = [task for d in sweep_dirs for task in array_tasks(d)]
    assert len(tasks) == 4 and all(states(sacct_settled(t))[t] == ["COMPLETED"] for t in tasks), tasks
    job_dirs = sorted(int(p.parent.name) for d in sweep_dirs for p in d.glob("*/summary.json"))
    assert job_dirs == [0, 1, 2, 3]
