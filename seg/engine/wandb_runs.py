"""Evaluations and ablation reports as W&B runs of the group their training runs were tracked under.

`seg.evaluate` logs an evaluation (job_type eval); `seg.report` logs a report (job_type report) with its tables
and plots. Both follow the stored logger settings of the runs they are about (project, mode, group).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from seg.config import train_config_from_yaml
from seg.engine.evaluation import Evaluation
from seg.engine.tracking import WandbTracker
from seg.schema import LoggerConfig, TrainConfig


def track_evaluation(
    trained: TrainConfig, out_dir: Path, split: str, config: dict[str, Any], result: Evaluation,
    extra: dict[str, float], examples: Path,
) -> str | None:  # fmt: skip
    """An evaluation as a W&B run (job_type eval) of the group its training run was tracked under, named
    `<training run name>-eval-<split>`: metrics as `<split>/...` in the summary, the per-image table, and
    examples.png. Follows the checkpoint's logger settings (none: no run). Returns the W&B run id."""
    lg = trained.logger
    tracker = WandbTracker.for_logger(
        lg, out_dir, config, job_type="eval", name=f"{lg.run_name or trained.name}-eval-{split}"
    )
    tracker.log_evaluation(split, result, extra)
    if examples.is_file():
        tracker.log_image(f"{split}/examples", examples)
    run_id = tracker.run_id
    tracker.finish()
    return run_id


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
                tracker.log_table(f"report/{path.stem}", *_read_csv(path))
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


def markdown_tables(text: str) -> list[tuple[str, list[str], list[list[Any]]]]:
    """(key, columns, rows) of each GitHub-flavoured table in `text`; key: the heading above it, slugged."""
    tables, heading, block = [], "table", []
    for line in [*text.splitlines(), ""]:
        if line.startswith("|"):
            block.append([_cell(c) for c in line.strip().strip("|").split("|")])
            continue
        if len(block) >= 2:
            key = f"{len(tables) + 1}_{heading}"
            rows = _uniform([r for r in block[2:] if len(r) == len(block[0])])
            tables.append((key, [str(c) for c in block[0]], rows))
        block = []
        if line.startswith("#"):
            heading = re.sub(r"\W+", "_", line.lstrip("#").strip().lower()).strip("_")[:40] or "table"
    return tables


def _cell(text: str) -> Any:
    text = text.strip().strip("`*")
    try:
        return float(text)
    except ValueError:
        return text


def _uniform(rows: list[list[Any]]) -> list[list[Any]]:
    """Rows whose columns each hold one type (W&B tables refuse a column of numbers and text): a column with any
    text cell becomes all text."""
    text = {i for r in rows for i, c in enumerate(r) if isinstance(c, str)}
    return [[str(c) if i in text else c for i, c in enumerate(r)] for r in rows]


def _read_csv(path: Path) -> tuple[list[str], list[list[Any]]]:
    with path.open(newline="") as f:
        rows = list(csv.reader(f))
    return (rows[0], _uniform([[_cell(c) for c in r] for r in rows[1:]])) if rows else ([], [])
