"""Model-selection noise of a study whose runs had trainer.ema_decay: test Dice of best.pt, last.pt and ema.pt.

    python scripts/checkpoint_spread.py <study dir> [--vary <run dir> ...]

For each checkpoint (seg.constants.CHECKPOINTS) it reads the study's runs as `study.checkpoint=<it>` would
(seg.study.results.load_runs, paired_comparisons) and prints markdown tables: per arm the mean and std of test
Dice over the seeds (runs completed with all three checkpoints only), and per comparison the std over seeds of
the paired difference (arm - baseline), the spread the verdicts' tests and seeds-needed depend on. The checkpoint
with the smallest paired spread needs the fewest seeds for the same effect.

--vary: single runs of one arm that vary one source (`seeds.<source>=s`, the others at `seed`), judged with the
study's runs of that arm at seed `seed` and the other seeds (seg.study.variance).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
from pathlib import Path

import numpy as np

from seg.config import train_config_from_yaml
from seg.constants import CHECKPOINTS
from seg.rundir import RunDir
from seg.schema import SOURCES, SeedsConfig
from seg.study.plan import Job, run_key
from seg.study.results import Run, StudyRecord, cells, load_runs, paired_comparisons, run_path
from seg.study.variance import source_spreads, variance_lines


def all_tested(record: StudyRecord, study_dir: Path) -> set[str]:
    """Keys of the runs that completed with a test Dice for every checkpoint."""
    runs = load_runs(study_dir, record.jobs)
    return {k for k, r in runs.items() if r.completed and all(r.summary.test_dice_of(c) is not None
                                                             for c in CHECKPOINTS)}  # fmt: skip


def arm_table(record: StudyRecord, study_dir: Path, keys: set[str]) -> list[str]:
    lines = ["| arm | seeds | " + " | ".join(f"{c}.pt mean ± std" for c in CHECKPOINTS) + " |",
             "|---|---|" + "---|" * len(CHECKPOINTS)]  # fmt: skip
    seen: set[tuple[str, ...]] = set()
    for (ablation, stratum, arm), by_seed in cells(record.jobs).items():
        done = tuple(k for k in by_seed.values() if k in keys)
        if not done or done in seen:  # a run shared by two ablations is listed once
            continue
        seen.add(done)
        values = []
        for checkpoint in CHECKPOINTS:
            runs = load_runs(study_dir, record.jobs, checkpoint)
            dice = np.array([runs[k].value("test_dice") for k in done])
            values.append(f"{dice.mean():.4f} ± {dice.std(ddof=1):.4f}" if len(dice) > 1 else f"{dice[0]:.4f}")
        lines.append(f"| {ablation}: {arm}{f' ({stratum})' if stratum else ''} | {len(done)} | " +
                     " | ".join(values) + " |")  # fmt: skip
    return lines


def paired_table(record: StudyRecord, study_dir: Path, keys: set[str]) -> list[str]:
    jobs = [j for j in record.jobs if j.key in keys]
    spreads: dict[str, dict[str, float]] = {}
    for checkpoint in CHECKPOINTS:
        runs = load_runs(study_dir, jobs, checkpoint)
        for p in paired_comparisons(record.ablations, jobs, runs, "test_dice"):
            if p.comparison is not None and len(p.seeds) > 1:
                d = p.comparison.arm - p.comparison.baseline
                spreads.setdefault(p.name, {})[checkpoint] = (len(d), float(d.mean()), float(d.std(ddof=1)))
    lines = ["| comparison | seeds | " + " | ".join(f"{c}.pt mean diff (std)" for c in CHECKPOINTS) + " | smallest |",
             "|---|---|" + "---|" * (len(CHECKPOINTS) + 1)]  # fmt: skip
    wins = dict.fromkeys(CHECKPOINTS, 0)
    for name, by_ckpt in spreads.items():
        best = min(by_ckpt, key=lambda c: by_ckpt[c][2])
        wins[best] += 1
        cells_ = [f"{m:+.4f} ({s:.4f})" for _, m, s in by_ckpt.values()]
        lines.append(f"| {name} | {next(iter(by_ckpt.values()))[0]} | " + " | ".join(cells_) + f" | {best} |")
    if spreads:
        rms = {c: math.sqrt(np.mean([v[c][2] ** 2 for v in spreads.values()])) for c in CHECKPOINTS}
        lines.append("| **RMS of the paired std** | | " + " | ".join(f"**{rms[c]:.4f}**" for c in CHECKPOINTS) +
                     f" | smallest in {', '.join(f'{c} {n}' for c, n in wins.items())} |")  # fmt: skip
    return lines


def vary_section(record: StudyRecord, study_dir: Path, vary_runs: list[Path]) -> list[str]:
    """Single runs that vary one source, with the study's runs of their arm: seg.study.variance's table per
    checkpoint. A vary run's arm is the study job whose key its config has with `seeds` unset."""
    paths = {j.key: run_path(study_dir, j.key) for j in record.jobs}
    jobs: list[Job] = []
    for path in vary_runs:
        cfg = train_config_from_yaml((path / "config.yaml").read_text(), str(path))
        source = next(k for k, v in dataclasses.asdict(cfg.seeds).items() if v is not None)
        key = run_key(dataclasses.replace(cfg, seeds=SeedsConfig()))
        base = next(j for j in record.jobs if j.key == key and j.source is None)
        paths[path.name] = path
        jobs.append(Job(base.ablation, base.stratum, base.arm, getattr(cfg.seeds, source), (), path.name, source))
        jobs += [Job(base.ablation, base.stratum, base.arm, base.seed, (), base.key, s) for s in SOURCES]
    arms = {(j.ablation, j.stratum, j.arm) for j in jobs}
    jobs += [j for j in record.jobs if j.source is None and (j.ablation, j.stratum, j.arm) in arms]
    jobs = list(dict.fromkeys(jobs))
    lines = []
    for checkpoint in CHECKPOINTS:
        runs = {j.key: Run(j.key, RunDir(paths[j.key]), checkpoint) for j in jobs}
        lines += [f"### {checkpoint}.pt", *variance_lines(source_spreads(jobs, runs, "test_dice"), "test Dice")[4:], ""]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("study_dir", type=Path)
    parser.add_argument("--vary", type=Path, nargs="*", default=[])
    args = parser.parse_args(argv)
    record = StudyRecord.load(args.study_dir)
    keys = all_tested(record, args.study_dir)
    print(f"{len(keys)} runs completed with best.pt, last.pt and ema.pt tested\n")
    print("\n".join(arm_table(record, args.study_dir, keys)), "\n")
    print("\n".join(paired_table(record, args.study_dir, keys)), "\n")
    if args.vary:
        print("\n".join(vary_section(record, args.study_dir, args.vary)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
