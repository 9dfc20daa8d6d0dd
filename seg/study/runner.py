"""The study runner behind `hydra/sweeper=seg_study`: a study is a set of unique runs, each in a fixed directory.

`python -m seg.train -m study=ablations` expands every ablation to its jobs (seg.study.plan), keys each by its
effective config and gives every unique run the directory `<study dir>/runs/<key>/`. Before launching, each run
is claimed (seg.claims: one writer per run) and read through seg.rundir, and its next `Action` decided:
completed -> skipped; interrupted or killed with a last.pt -> relaunched with `resume=<run dir>` (the same config,
so seg.resume accepts it); anything else that holds results (failed, or killed before its first epoch ended) ->
its directory moved to `<study dir>/attempts/` and the run started afresh; a run another command is training ->
left to it. Only the remaining runs go to the configured Hydra launcher (basic, joblib, Ray, SLURM); each job
claims its run again, so two study commands on one study dir never train one run twice, and together finish it.

With `study.max_seeds`, after the first `study.seeds` the comparisons are judged (seg.study.stats.judge under
the study's rule, alpha spent over the looks) and only the unresolved ones get more seeds, at seed counts fixed in
advance (seg.study.rules.look_schedule).
At the end the study writes study.json and the report (seg.report) into the study directory, one command at a
time (a short claim on the study dir); a job the launcher lost (killed: SIGKILL, out of memory) is recorded as
`killed` and named in one line with what to rerun.
"""

from __future__ import annotations

import logging
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from enum import Enum
from pathlib import Path

from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig

from seg.claims import CLAIM_FILE, ClaimBusy, held, holder_of
from seg.config import typed_job_config
from seg.errors import ConfigError, SegError
from seg.rundir import RunDir, Status
from seg.schema import StudyConfig, TrainConfig
from seg.study.plan import Job, comparison_names, describe, expand, load_ablations, seed_sequence
from seg.study.progress import launched_runs, tally_text, with_progress
from seg.study.report import judged_pairs, write_report
from seg.study.results import StudyRecord, load_runs, run_path
from seg.study.rules import rule_from_settings
from seg.study.sequential import final_look_alpha, next_seed_counts
from seg.study.wandb_runs import log_report, name_jobs

log = logging.getLogger(__name__)
WAIT_POLL_S = 5.0  # with study.wait: how often runs held by other commands are looked at


class StudyFailed(SegError):
    """No run of the study completed."""


class Action(str, Enum):
    """What this command does with one run of the study."""

    NEW = "new"  # no results yet
    SKIP = "skip"  # completed or pruned
    RESUME = "resume"  # interrupted or killed, with a last.pt
    RERUN = "rerun"  # failed, or killed before its first epoch ended: set aside, started afresh
    HELD = "held"  # another live command is training it


@dataclass
class Launches:
    """What one study command launched: the tally recorded in study.json and the runs left to other commands."""

    tally: Counter = field(default_factory=Counter)
    seen: set[str] = field(default_factory=set)
    held: dict[str, str] = field(default_factory=dict)  # run key -> its holder


def run_study(config: DictConfig, arguments: list[str], compose_raw: Callable[[list[str]], DictConfig],
              launch: Callable[[list[list[str]]], None]) -> StudyRecord:  # fmt: skip
    """Run (or continue) the study of the composed multirun `config`; returns what study.json records."""
    refuse_sweeps(arguments)
    own = typed_job_config(config)
    study = own.study or StudyConfig(name=own.name)
    study_dir = Path(str(config.hydra.sweep.dir)).absolute()

    composed: dict[tuple[str, ...], TrainConfig] = {}  # composing takes ~0.1 s (more on a busy CPU): once per job

    def compose(overrides: list[str]) -> TrainConfig:
        if tuple(overrides) not in composed:
            composed[tuple(overrides)] = typed_job_config(compose_raw(overrides))
        return composed[tuple(overrides)]

    ablations = load_ablations(study, own, compose, arguments)
    rule = rule_from_settings(asdict(study))
    schedule = list(rule.schedule)
    record = StudyRecord(study.name, asdict(study), final_look_alpha(rule), ablations, [])
    started, launches, keys = time.time(), Launches(), {}
    run_looks(study, study_dir, record, schedule, lambda counts: name_jobs(
        expand(ablations, counts, compose, arguments, keys, study.folds, study.vary, study.fold_mode), ablations,
        study.name, compose),
              lambda batch: with_progress(study_dir, batch, lambda: _launch_guarded(launch, batch, launches.tally)),
              launches)  # fmt: skip
    for ab in ablations:
        job = next(j for j in record.jobs if j.ablation == ab.name)
        record.descriptions[ab.name] = describe(compose(list(job.overrides)), [ab.factor, *ab.strata])
    return finish(study, study_dir, record, started, launches)


def run_looks(study: StudyConfig, study_dir: Path, record: StudyRecord, schedule: list[int],
              jobs_for: Callable[[dict[str, list[int]]], list[Job]], launch: Callable[[list[list[str]]], None],
              launches: Launches) -> None:  # fmt: skip
    """Launch the runs of each look (more seeds only for unresolved comparisons), then wait for runs held by
    other commands when `study.wait`."""
    seeds, first = seed_sequence(study), len(study.seeds)
    counts = dict.fromkeys(comparison_names(record.ablations), first)
    for look, n_seeds in enumerate(schedule):
        record.jobs = jobs_for({n: seeds[:c] for n, c in counts.items()})
        save_record(study_dir, record)
        batch = prepare(study_dir, record.jobs, launches)
        log.info("Study %s, look %d (%d seeds): %d runs, %d to launch (%s)", study.name, look + 1, n_seeds,
                 len({j.key for j in record.jobs}), len(batch), tally_text(launches.tally))  # fmt: skip
        launch(batch)
        record_killed(study_dir, batch)
        if look + 1 == len(schedule):
            break
        more = _more_seeds(study, study_dir, record, n_seeds, schedule)
        if not more:
            break
        counts.update(more)
    while study.wait and launches.held:
        log.info("Waiting for %d runs other commands are training: %s", len(launches.held), describe_held(launches))
        time.sleep(WAIT_POLL_S)
        free = [k for k in launches.held if holder_of(run_path(study_dir, k)) is None]
        for key in free:
            launches.seen.discard(key)
            del launches.held[key]
        if free:
            batch = prepare(study_dir, [j for j in record.jobs if j.key in free], launches)
            launch(batch)
            record_killed(study_dir, batch)


def _more_seeds(study: StudyConfig, study_dir: Path, record: StudyRecord, n_seeds: int,
                schedule: list[int]) -> dict[str, int]:  # fmt: skip
    runs = load_runs(study_dir, record.jobs, record.checkpoint)
    _, pairs = judged_pairs(record, runs, rule_from_settings(record.settings))  # as the report judges them
    return next_seed_counts([v.name for _, v in pairs if v.kind == "unresolved"], n_seeds, study.max_seeds, schedule)


def finish(study: StudyConfig, study_dir: Path, record: StudyRecord, started: float, launches: Launches) -> StudyRecord:
    """Record this command in study.json and write the report, one command at a time; say what did not finish."""
    invocation = {"started": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started)),
                  "wall_seconds": round(time.time() - started, 1), **launches.tally}  # fmt: skip
    with held(study_dir, "seg study (report)", wait=True):
        if (study_dir / "study.json").is_file():
            record.invocations = StudyRecord.load(study_dir).invocations
        record.invocations.append(invocation)
        record.save(study_dir)
        report = write_report(study_dir)
    log_report(report, sorted(study_dir.glob("*.png")), [study_dir / "runs"])  # a W&B run in the study's group
    runs = load_runs(study_dir, record.jobs, record.checkpoint)
    unfinished = {k: r for k, r in runs.items() if not (r.summary and r.summary.status.finished)}
    others = {k: h for k in unfinished if (h := _holder(study_dir, k))}
    if others:
        print(f"{len(others)} runs are being trained by other commands ({'; '.join(sorted(set(others.values())))}); "
              f"the last command to finish reports them, or run: python -m seg.report {study_dir}")  # fmt: skip
    left = sorted(k for k in unfinished if k not in others)
    if left:
        print(f"{len(left)} runs did not finish ({', '.join(f'{k}: {_status(runs[k].run)}' for k in left)}); run the "
              "same command again: it resumes interrupted and killed runs and reruns failed ones")  # fmt: skip
    if not any(r.completed for r in runs.values()) and not others:
        raise StudyFailed(f"no run of study {study.name} completed ({len(runs)} runs); see {report}")
    print(f"Study report: {report}")
    return record


def save_record(study_dir: Path, record: StudyRecord) -> None:
    """study.json, written by one command at a time; the invocations other commands recorded are kept."""
    with held(study_dir, "seg study (study.json)", wait=True):
        if (study_dir / "study.json").is_file():
            record.invocations = StudyRecord.load(study_dir).invocations
        record.save(study_dir)


def refuse_sweeps(arguments: list[str]) -> None:
    """A study makes its own grid: `key=a,b` on its command line is refused."""
    for override in OverridesParser.create().parse_overrides(arguments):
        if override.is_sweep_override():
            raise ConfigError(f"{override.input_line}: a study sets its own grid (the ablations' values and "
                              "study.seeds); give one value per key, e.g. study.seeds=[0,1,2,3,4,5]")  # fmt: skip


def next_action(run: RunDir) -> Action:
    """What a run's folder calls for (read while this command holds the run's claim)."""
    summary = run.read_summary()
    if summary is None and not (run.checkpoints.exists() or run.metrics.exists()):
        return Action.NEW  # no folder, or one holding no result (Hydra's record, a claim)
    if summary is not None and summary.status.finished:
        return Action.SKIP
    resumable = (Status.RUNNING, Status.INTERRUPTED, Status.KILLED)
    if run.last.is_file() and (summary is None or summary.status in resumable):
        return Action.RESUME
    return Action.RERUN


def prepare(study_dir: Path, jobs: list[Job], launches: Launches) -> list[list[str]]:
    """The launcher's batch for the runs of `jobs` not handled yet by this command; counts in the tally: jobs
    asked, unique runs and each action, plus the seconds of completed runs that are not run again."""
    batch, tally = [], launches.tally
    tally["jobs"] = len(jobs)
    tally["runs"] = len({j.key for j in jobs})
    for job in jobs:
        if job.key in launches.seen:
            continue
        launches.seen.add(job.key)
        run = RunDir(run_path(study_dir, job.key))
        try:
            with held(run.path, "seg study (planning)"):
                action = next_action(run)
                if action == Action.RERUN:
                    aside = set_aside(run.path, study_dir / "attempts")
                    log.warning("Run %s did not complete (%s): kept as %s, started again", job.key,
                                _status(RunDir(aside)), aside)  # fmt: skip
        except ClaimBusy:
            action, launches.held[job.key] = Action.HELD, _holder(study_dir, job.key) or "a command that ended"
        tally[action.value] += 1
        if action == Action.SKIP:
            tally["seconds_skipped"] += round(run.read_summary().seconds, 1)
        elif action != Action.HELD:
            batch.append([*job.overrides, f"hydra.sweep.dir={quote(study_dir)}", *_where(study_dir, run, action)])
    return batch


def _launch_guarded(launch: Callable[[list[list[str]]], None], batch: list[list[str]], tally: Counter) -> None:
    """Launch `batch`; a launcher that lost a job (joblib's TerminatedWorkerError when the OOM killer or a SIGKILL
    took a worker, a lost node) is one line, and the study goes on to record and report its other runs."""
    try:
        launch(batch)
    except Exception as e:  # noqa: BLE001 -- every job catches its own errors: this is the launcher's
        tally["launcher_errors"] += 1
        log.error("the launcher lost jobs of this batch (%s: %s); the study goes on with the runs that finished",
                  type(e).__name__, (str(e).strip().splitlines() or [""])[0])  # fmt: skip


def record_killed(study_dir: Path, batch: list[list[str]]) -> None:
    """After a launch: a launched run still `running` that no live command holds was killed (SIGKILL, out of memory,
    a lost node): its summary says so (under its claim), and the next command resumes or reruns it."""
    for run in launched_runs(study_dir, batch):
        try:
            with held(run.path, "seg study (recording a killed run)"):
                summary = run.read_summary()
                if summary is None or summary.status != Status.RUNNING:
                    continue
                summary.status = Status.KILLED
                summary.error = (f"killed after epoch {summary.epochs} (SIGKILL, out of memory or a lost node); "
                                 "rerun the study command to continue it")  # fmt: skip
                run.write_summary(summary)
                log.error("Run %s: %s", run.path.name, summary.error)
        except ClaimBusy:
            continue  # another command trains it


def _holder(study_dir: Path, key: str) -> str | None:
    holder = holder_of(run_path(study_dir, key))
    return None if holder is None else holder.describe()


def describe_held(launches: Launches) -> str:
    return "; ".join(f"{k} by {h}" for k, h in sorted(launches.held.items()))


def _where(study_dir: Path, run: RunDir, action: Action) -> list[str]:
    """A new run's job directory is its run directory. A resume writes into the run once seg.resume accepts it;
    its job directory (Hydra's record of the command, its log) goes to resumes/<key>.<n>, as seg.train's does."""
    if action != Action.RESUME:
        return [f"hydra.sweep.subdir=runs/{run.path.name}"]
    n = 1
    while (study_dir / "resumes" / f"{run.path.name}.{n}").exists():
        n += 1
    return [f"hydra.sweep.subdir=resumes/{run.path.name}.{n}", f"resume={quote(run.path)}"]


def _status(run: RunDir) -> str:
    summary = run.read_summary()
    return "no summary" if summary is None else summary.status.value


def set_aside(path: Path, attempts: Path) -> Path:
    """Move a run folder to `attempts/<name>.<n>` (the next free n): nothing computed is deleted. The claim of
    this command moves with it and is dropped there."""
    attempts.mkdir(parents=True, exist_ok=True)
    n = 1
    while (attempts / f"{path.name}.{n}").exists():
        n += 1
    aside = path.rename(attempts / f"{path.name}.{n}")
    (aside / CLAIM_FILE).unlink(missing_ok=True)
    return aside


def quote(path: Path) -> str:
    """A path as a Hydra override value (quoted unless it is plain)."""
    text = str(path)
    if re.fullmatch(r"[\w./:+-]+", text):
        return text
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"
