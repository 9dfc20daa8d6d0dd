"""A study in W&B: its runs named arm + seed in one group per study, tagged with what they serve, and its report.

A study's run gets, on its job's command line (seg.study.runner launches it), `logger.run_name` (the values of
every key the study's ablations vary, then the seed: `unet-basic-cosine-s1`, the same under every ablation that
shares the run), `logger.group` (the study's name) and `logger.tags` (the ablations and arms it serves). The
report is a run of that group too (job_type report, name `report`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from seg.config import debug_limits, train_config_from_yaml
from seg.engine.tracking import WandbTracker
from seg.overrides import override_values
from seg.schema import LoggerConfig, TrainConfig
from seg.study.plan import Ablation, Compose, Job
from seg.study.tables import markdown_tables, read_csv
from seg.wandb_names import name_part


def name_jobs(jobs: list[Job], ablations: list[Ablation], group: str, compose: Compose) -> list[Job]:
    """`jobs` with the W&B overrides of their run added: its name (arm + seed), the study's group and its tags.

    The name reads every varied key (factors and strata of all ablations, in config order) from the run's config,
    so a run shared by two ablations has one name; `compose` runs once per arm (the seed only adds `-s<seed>`, a
    study.vary run `-s<base seed>-<source><seed>`)."""
    varied = _varied_keys(ablations)
    names: dict[tuple[str, ...], str] = {}
    tags: dict[str, list[str]] = {}
    by_arm: dict[tuple[str, str, str], TrainConfig] = {}
    for job in jobs:
        arm = (job.ablation, job.stratum, job.arm)
        if arm not in by_arm:
            by_arm[arm] = compose(list(job.overrides))
        cfg = by_arm[arm]
        names[job.overrides] = "-".join([*(name_part(k, _value(cfg, k)) for k in varied), *_seeding(job)])
        factor = next(a.factor for a in ablations if a.name == job.ablation)
        served = [job.ablation, f"{factor}={job.arm}", *job.stratum.split(), *(["debug"] if debug_limits(cfg) else [])]
        tags[job.key] = list(dict.fromkeys([*tags.get(job.key, []), *served]))
    first = {}
    for job in jobs:
        first.setdefault(job.key, names[job.overrides])
    return [dataclasses.replace(job, overrides=(*job.overrides, *tracking_overrides(first[job.key], group,
                                                                                       tags[job.key])))
            for job in jobs]  # fmt: skip


def _seeding(job: Job) -> list[str]:
    """The seed part of a run's name: `s1`; `s1-fold2` (study.fold_mode=every); for a run of study.vary that seeds
    one source alone, the base seed then that source's seed, `s0-init3` (seed=0 seeds.init=3), so that it is told
    apart from the ordinary run of seed 3."""
    if job.fold is not None:
        return [name_part("seed", job.seed), name_part("fold", job.fold)]
    varied = f"seeds.{job.source}"
    given = override_values(job.overrides)
    if job.source is None or varied not in given:  # an ordinary run; or the base seed's own, shared
        return [name_part("seed", job.seed)]
    return [name_part("seed", given["seed"]), name_part(varied, given[varied])]


def tracking_overrides(name: str, group: str, tags: list[str]) -> list[str]:
    """The Hydra overrides that give a job its W&B name, group and tags."""
    return [f"logger.run_name={_quoted(name)}", f"logger.group={_quoted(group)}",
            "logger.tags=[" + ",".join(_quoted(t) for t in tags) + "]"]  # fmt: skip


def _quoted(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _varied_keys(ablations: list[Ablation]) -> list[str]:
    """The factor and strata keys of all ablations, in the order of the config (model before augmentation...)."""
    keys = list(dict.fromkeys(k for a in ablations for k in [a.factor, *a.strata]))
    order = [f.name for f in dataclasses.fields(TrainConfig)]
    return sorted(keys, key=lambda k: (order.index(k.split(".")[0]) if k.split(".")[0] in order else len(order), k))


def _value(cfg: TrainConfig, key: str) -> Any:
    """A dotted key's value; a config group (model, scheduler, ...) by its option name."""
    node: Any = cfg
    for part in key.split("."):
        node = getattr(node, part)
    return node.name if dataclasses.is_dataclass(node) else node

def log_report(report_md: Path, attachments: Sequence[Path], sweep_dirs: Sequence[Path]) -> list[str]:
    """An ablation report as a W&B run (job_type report, name `report`) in the group of each study it covers.

    Logs report.md's text, each of its markdown tables as a W&B table (named after the heading above it), each
    PNG in `attachments` as an image and each CSV as a table, and all of them as one `report` artifact. Project,
    mode and group are those the studies' runs were tracked with (their stored config.yaml); studies run with
    `logger=none` get no report run. Returns the W&B run ids.
    """
    text = report_md.read_text()
    ids = []
    for lg in study_loggers(sweep_dirs).values():
        lg = dataclasses.replace(lg, tags=["report", *(["debug"] if "debug" in lg.tags else [])])
        tracker = WandbTracker.for_logger(
            lg, report_md.parent, {"report": str(report_md), "sweeps": [str(d) for d in sweep_dirs]},
            job_type="report", name="report",
        )  # fmt: skip
        tracker.log_text("report/text", text)
        for key, columns, rows in markdown_tables(text):
            tracker.log_table(f"report/{key}", columns, rows)
        for path in attachments:
            if path.suffix == ".png":
                tracker.log_image(f"report/{path.stem}", path)
            elif path.suffix == ".csv":
                tracker.log_table(f"report/{path.stem}", *read_csv(path))
        tracker.log_artifact(f"report-{lg.group}", "report", [report_md, *attachments])
        if tracker.run_id:
            ids.append(tracker.run_id)
        tracker.finish()
    return ids


def study_loggers(sweep_dirs: Sequence[Path]) -> dict[str, LoggerConfig]:
    """{W&B group: logger settings} of the studies (sweep directories), from a job's stored config.yaml."""
    loggers: dict[str, LoggerConfig] = {}
    for sweep_dir in sweep_dirs:
        stored = sorted(Path(sweep_dir).glob("*/config.yaml"))
        if stored:
            lg = train_config_from_yaml(stored[0].read_text(), str(stored[0])).logger
            if lg.name == "wandb":
                loggers.setdefault(lg.group, lg)
    return loggers


