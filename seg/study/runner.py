"""The study runner behind `hydra/sweeper=seg_study`: a study is a set of unique runs, each in a fixed directory.

`python -m seg.train -m study=ablations` expands every ablation to its jobs (seg.study.plan), keys each by its
effective config and gives every unique run the directory `<study dir>/runs/<key>/`. Before launching, each run
is read through seg.rundir: completed -> skipped; interrupted or killed (summary `running`) with a last.pt ->
relaunched with `resume=<run dir>` (the same config, so seg.resume accepts it); anything else that exists
(failed, or killed before its first epoch ended) -> its directory moved to `<study dir>/attempts/` and the run
started afresh. Only the remaining runs go to the configured Hydra launcher (basic, joblib, Ray, SLURM).

With `study.max_seeds`, after the first `study.seeds` the comparisons are judged (seg.study.stats.judge at the
per-look alpha) and only the unresolved ones get more seeds, at seed counts fixed in advance (look_schedule).
At the end the study writes study.json and the report (seg.report) into the study directory.
"""

from __future__ import annotations

import logging
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig

from seg.config import typed_job_config
from seg.engine.wandb_runs import log_report
from seg.errors import ConfigError, SegError
from seg.report import write_report
from seg.rundir import RunDir, Status
from seg.schema import StudyConfig, TrainConfig
from seg.study.plan import Job, comparison_names, describe, expand, load_ablations, seed_sequence
from seg.study.results import StudyRecord, load_runs, paired_comparisons, run_path
from seg.study.stats import judge, look_schedule, looks_alpha, next_seed_counts

log = logging.getLogger(__name__)

ACTIONS = ("new", "skip", "resume", "rerun")


class StudyFailed(SegError):
    """No run of the study completed."""


def run_study(config: DictConfig, arguments: list[str], compose_raw: Callable[[list[str]], DictConfig],
              launch: Callable[[list[list[str]]], None]) -> StudyRecord:  # fmt: skip
    """Run (or continue) the study of the composed multirun `config`; returns what study.json records."""
    refuse_sweeps(arguments)
    own = typed_job_config(config)
    study = own.study or StudyConfig(name=own.name)
    study_dir = Path(str(config.hydra.sweep.dir)).absolute()

    def compose(overrides: list[str]) -> TrainConfig:
        return typed_job_config(compose_raw(overrides))

    ablations = load_ablations(study, own, compose, arguments)
    seeds, first = seed_sequence(study), len(study.seeds)
    schedule = look_schedule(first, study.max_seeds, study.looks) if study.max_seeds else [first]
    record = StudyRecord(study.name, asdict(study), looks_alpha(study.alpha, len(schedule)), ablations, [])
    if (study_dir / "study.json").is_file():
        record.invocations = StudyRecord.load(study_dir).invocations
    counts, keys, seen, tally = dict.fromkeys(comparison_names(ablations), first), {}, set(), Counter()
    started = time.time()
    for look, n_seeds in enumerate(schedule):
        record.jobs = expand(ablations, {n: seeds[:c] for n, c in counts.items()}, compose, arguments, keys)
        record.save(study_dir)
        batch = prepare(study_dir, record.jobs, seen, tally)
        log.info("Study %s, look %d (%d seeds): %d runs, %d to launch (%s)", study.name, look + 1, n_seeds,
                 len({j.key for j in record.jobs}), len(batch), dict(tally))  # fmt: skip
        launch(batch)
        if look + 1 == len(schedule):
            break
        runs = load_runs(study_dir, record.jobs)
        paired = [p.comparison for p in paired_comparisons(ablations, record.jobs, runs, study.metric) if p.comparison]
        more = next_seed_counts(judge(paired, study.margin, record.alpha_look), n_seeds, study.max_seeds, schedule)
        if not more:
            break
        counts.update(more)
    for ab in ablations:
        job = next(j for j in record.jobs if j.ablation == ab.name)
        record.descriptions[ab.name] = describe(compose(list(job.overrides)), [ab.factor, *ab.strata])
    record.invocations.append({"started": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started)),
                               "wall_seconds": round(time.time() - started, 1), **tally})  # fmt: skip
    record.save(study_dir)
    report = write_report(study_dir)
    log_report(report, sorted(study_dir.glob("*.png")), [study_dir / "runs"])  # a W&B run in the study's group
    runs = load_runs(study_dir, record.jobs)
    if not any(r.completed for r in runs.values()):
        raise StudyFailed(f"no run of study {study.name} completed ({len(runs)} runs); see {report}")
    print(f"Study report: {report}")
    return record


def refuse_sweeps(arguments: list[str]) -> None:
    """A study makes its own grid: `key=a,b` on its command line is refused."""
    for override in OverridesParser.create().parse_overrides(arguments):
        if override.is_sweep_override():
            raise ConfigError(f"{override.input_line}: a study sets its own grid (the ablations' values and "
                              "study.seeds); give one value per key, e.g. study.seeds=[0,1,2,3,4,5]")  # fmt: skip


def next_action(run: RunDir) -> str:
    """new (no folder), skip (completed or pruned), resume (interrupted or killed, with a last.pt) or rerun."""
    if not run.path.exists():
        return "new"
    summary = run.read_summary()
    if summary is not None and summary.status.finished:
        return "skip"
    if run.last.is_file() and (summary is None or summary.status in (Status.RUNNING, Status.INTERRUPTED)):
        return "resume"
    return "rerun"


def prepare(study_dir: Path, jobs: list[Job], seen: set[str], tally: Counter) -> list[list[str]]:
    """The launcher's batch for the runs of `jobs` not handled yet by this command (`seen`); counts in `tally`:
    jobs asked, unique runs and each action, plus the seconds of completed runs that are not run again."""
    batch = []
    tally["jobs"] = len(jobs)
    tally["runs"] = len({j.key for j in jobs})
    for job in jobs:
        if job.key in seen:
            continue
        seen.add(job.key)
        run = RunDir(run_path(study_dir, job.key))
        action = next_action(run)
        tally[action] += 1
        if action == "skip":
            tally["seconds_skipped"] += round(run.read_summary().seconds, 1)
            continue
        if action == "rerun":
            aside = set_aside(run.path, study_dir / "attempts")
            log.warning("Run %s did not complete (%s): kept as %s, started again", job.key, _status(run), aside)
        batch.append([*job.overrides, f"hydra.sweep.dir={quote(study_dir)}", *_where(study_dir, run, action)])
    return batch


def _where(study_dir: Path, run: RunDir, action: str) -> list[str]:
    """A new run's job directory is its run directory. A resume writes into the run once seg.resume accepts it;
    its job directory (Hydra's record of the command, its log) goes to resumes/<key>.<n>, as seg.train's does."""
    if action != "resume":
        return [f"hydra.sweep.subdir=runs/{run.path.name}"]
    n = 1
    while (study_dir / "resumes" / f"{run.path.name}.{n}").exists():
        n += 1
    return [f"hydra.sweep.subdir=resumes/{run.path.name}.{n}", f"resume={quote(run.path)}"]


def _status(run: RunDir) -> str:
    summary = run.read_summary()
    return "no summary" if summary is None else summary.status.value


def set_aside(path: Path, attempts: Path) -> Path:
    """Move a run folder to `attempts/<name>.<n>` (the next free n): nothing computed is deleted."""
    attempts.mkdir(parents=True, exist_ok=True)
    n = 1
    while (attempts / f"{path.name}.{n}").exists():
        n += 1
    return path.rename(attempts / f"{path.name}.{n}")


def quote(path: Path) -> str:
    """A path as a Hydra override value (quoted unless it is plain)."""
    text = str(path)
    if re.fullmatch(r"[\w./:+-]+", text):
        return text
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"
