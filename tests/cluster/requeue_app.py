"""A Hydra app for the cluster tests: each attempt of a job appends one JSON line to `attempts.jsonl` in its
job directory (what SLURM, submitit and Hydra told it); the first attempt of the jobs in `sleep_jobs` then
sleeps for `sleep_s`, long enough to be preempted or to reach the time limit; every other attempt returns at
once. `python tests/cluster/requeue_app.py -m hydra/launcher=slurm out=/tmp/x seed=0,1 ...`"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

ENV_VARS = (
    "SLURM_JOB_ID",
    "SLURM_ARRAY_JOB_ID",
    "SLURM_ARRAY_TASK_ID",
    "SLURM_RESTART_COUNT",
    "SLURM_CPUS_PER_TASK",
    "OMP_NUM_THREADS",
)


@hydra.main(version_base="1.3", config_path="conf", config_name="requeue_app")
def main(cfg: DictConfig) -> int:
    hc = HydraConfig.get()
    run_dir = Path(hc.runtime.output_dir)
    log = run_dir / "attempts.jsonl"
    attempt = len(log.read_text().splitlines()) + 1 if log.exists() else 1
    record = {
        "attempt": attempt,
        "pid": os.getpid(),
        "run_dir": str(run_dir),
        "job_num": hc.job.num,
        "job_id": hc.job.id,
        "overrides": list(hc.overrides.task),
        "argv": sys.argv,
        **{k: os.environ.get(k) for k in ENV_VARS},
    }
    with log.open("a") as f:
        f.write(json.dumps(record) + "\n")
    if attempt == 1 and hc.job.num in cfg.sleep_jobs:
        # submitit's SIGUSR2 handler runs during the sleep: it requeues the job (scontrol requeue) and exits
        deadline = time.monotonic() + cfg.sleep_s
        while time.monotonic() < deadline:
            time.sleep(0.5)
    return int(cfg.seed)


if __name__ == "__main__":
    main()
