"""The Ray launcher (conf/hydra/launcher/ray_cluster.yaml, hydra-ray-launcher) against a Ray instance this module
starts on localhost (`ray start --head`) and stops: the same 2-job seg sweep as test_slurm.py, and the same tiny
study, as Ray tasks.
Ray lives in an overlay environment (scripts/cluster/ray_venv.sh; $SEG_RAY_PYTHON, default
.venv/overlay-ray/bin/python), so that the `ray` extra's pins (cloudpickle<3) leave .venv unchanged.
Run by `make test-cluster`; skipped unless SEG_CLUSTER lists ray (tests/cluster/conftest.py)."""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from clustertools import REPO, REQUEUE_APP, attempts, last_invocation, study_runs, sweep_dir_of, tiny_study

from seg.rundir import Status

RAY_TEMP = Path("/tmp/seg-ray")  # Ray's sockets live here: the path must stay short
ONE_CPU_JOB = ["hydra.launcher.ray.remote.num_cpus=1", "hydra.launcher.ray.remote.num_gpus=0"]


def ray_python() -> Path:
    python = Path(os.environ.get("SEG_RAY_PYTHON", REPO / ".venv" / "overlay-ray" / "bin" / "python"))
    assert python.exists(), f"no Python with Ray at {python}: bash scripts/cluster/ray_venv.sh"
    return python


def ray_cli(*args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    ray = ray_python().with_name("ray")
    return subprocess.run([str(ray), *args], capture_output=True, text=True, timeout=timeout)


def ray_processes() -> list[str]:
    """Live Ray daemons on this machine (gcs_server, raylet), as `ps` lines."""
    ps = subprocess.run(["ps", "-eo", "pid=,stat=,comm="], capture_output=True, text=True, check=True).stdout
    rows = [line.split() for line in ps.splitlines()]
    return [" ".join(r) for r in rows if r[-1] in ("gcs_server", "raylet") and not r[1].startswith("Z")]


@pytest.fixture(scope="module")
def ray_address() -> Iterator[str]:
    """A Ray head node on 127.0.0.1 with this machine's CPUs, stopped (and checked gone) after the module."""
    assert not ray_processes(), f"a Ray instance is already running here: {ray_processes()}"
    port = "6389"
    started = ray_cli(
        "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}", f"--num-cpus={os.cpu_count()}",
        "--num-gpus=0", "--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={RAY_TEMP}",
    )  # fmt: skip
    try:
        assert started.returncode == 0, started.stderr + started.stdout
        yield f"127.0.0.1:{port}"
    finally:
        stopped = ray_cli("stop", "--force")
        assert stopped.returncode == 0, stopped.stderr + stopped.stdout
        assert not ray_processes(), f"left running after ray stop: {ray_processes()}"


def run_sweep(ray_address: str, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "RAY_ADDRESS": ray_address, "WANDB_MODE": "offline", "HYDRA_FULL_ERROR": "1"}
    return subprocess.run(
        [str(ray_python()), *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout
    )


def test_seg_sweep_runs_as_ray_tasks(tmp_path: Path, cli_paths: list[str], ray_address: str) -> None:
    result = run_sweep(
        ray_address,
        "-m", "seg.train", "-m", "hydra/launcher=ray_cluster", "debug=smoke", "data=synthetic", "logger=none",
        "seed=0,1", *ONE_CPU_JOB, f"paths.output_dir={tmp_path}", *cli_paths,
    )  # fmt: skip
    output = result.stderr + result.stdout
    assert result.returncode == 0, output[-4000:]
    # the running instance, not a new one (Ray names the head by the machine's IP address)
    port = ray_address.rsplit(":", 1)[1]
    assert re.search(rf"Connecting to existing Ray cluster at address: [\d.]+:{port}\b", output), output[-4000:]
    [sweep_dir] = (tmp_path / "multirun" / "default").iterdir()
    for job in (0, 1):
        job_dir = sweep_dir / str(job)
        assert json.loads((job_dir / "summary.json").read_text())["status"] == "completed"
        assert (job_dir / "checkpoints" / "last.pt").is_file()
        assert f"seed={job}" in (job_dir / ".hydra" / "overrides.yaml").read_text()


def test_ray_jobs_get_their_cpus_as_threads(tmp_path: Path, ray_address: str) -> None:
    """Each job runs in its own job directory, with as many threads as the CPUs it asked Ray for."""
    result = run_sweep(
        ray_address,
        str(REQUEUE_APP), "-m", f"hydra.searchpath=[file://{REPO}/conf]", "hydra/launcher=ray_cluster",
        f"out={tmp_path}", "seed=0,1", "sleep_jobs=[]", *ONE_CPU_JOB, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, (result.stderr + result.stdout)[-4000:]
    sweep_dir = sweep_dir_of(tmp_path)
    assert sweep_dir is not None
    records = [attempts(sweep_dir / str(job)) for job in (0, 1)]
    assert [len(r) for r in records] == [1, 1], records
    for job, [record] in enumerate(records):
        assert record["run_dir"] == str(sweep_dir / str(job))
        assert record["job_num"] == job and record["overrides"][1] == f"seed={job}"
        assert record["OMP_NUM_THREADS"] == "1"


def test_study_runs_as_ray_tasks(tmp_path: Path, cli_paths: list[str], ray_address: str) -> None:
    """The tiny study's 6 runs as Ray tasks, then its report; the same command again runs nothing."""
    args, study = tiny_study(tmp_path, "hydra/launcher=ray_cluster", *ONE_CPU_JOB, *cli_paths)
    for invocation, action in ((1, "new"), (2, "skip")):
        result = run_sweep(ray_address, *args)
        assert result.returncode == 0, (result.stderr + result.stdout)[-4000:]
        last = last_invocation(study)
        assert (last["jobs"], last["runs"], last[action]) == (8, 6, 6), (invocation, last)
    summaries = study_runs(study)
    assert len(summaries) == 6 and all(s.status == Status.COMPLETED for s in summaries.values()), summaries
    report = (study / "report.md").read_text()
    assert "tiny_aug: basic vs none" in report and "tiny_sched: none vs cosine" in report
