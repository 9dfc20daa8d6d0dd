"""The study report: `python -m seg.report <study dir>` renders it again (each study command writes it at its end).

Reads <study dir>/study.json (the ablations and the run of each job, seg.study.results) and the runs, judges
every comparison (arm vs baseline within a stratum, paired by seed and test image) with seg.study.stats.judge
in one Holm family, and writes <study dir>/report.md with comparisons.png and one <ablation>.png per ablation.
"""

from __future__ import annotations

import argparse
import math
import statistics
from datetime import datetime
from pathlib import Path

from seg.errors import exit_on_user_error
from seg.study.plan import Ablation
from seg.study.plots import plot_ablation, plot_comparisons
from seg.study.results import STUDY_FILE, Paired, Run, StudyRecord, cells, load_runs, paired_comparisons
from seg.study.stats import Verdict, judge, min_seeds_for_sign_flip
from seg.sweep.results import markdown_table

FAIL_DICE = 0.5
"""A test image "fails" in a run when its Dice is below this; the report lists images that fail in every seed."""

RULES = (
    "How to read the verdicts: each comparison pairs the arm with its baseline seed by seed (same data order and "
    "initialisation) and, for test Dice, image by image. **difference**: the exact two-sided sign-flip test over "
    "the seeds, Holm-corrected across all comparisons of the study, gives p <= alpha. **no difference**: the "
    "interval of the mean difference lies inside ± margin (needs >= 3 seeds). **unresolved**: neither; the line "
    "says how many seeds would resolve it at the spread seen. With n seeds the sign-flip p cannot fall below "
    "2/2^n, so fewer than 6 seeds can never show a difference at alpha 0.05. P(arm better) is the probability "
    "that the arm beats the baseline on a new seed. Training time is the sum of the runs' epoch times."
)


def mean_std(values: list[float], digits: int = 4) -> str:
    """`mean ± std` over seeds ('' for none, the mean alone for one)."""
    if not values:
        return ""
    text = f"{statistics.mean(values):.{digits}f}"
    return text + (f" ± {statistics.stdev(values):.{digits}f}" if len(values) > 1 else "")


def _ci(ci: tuple[float, float] | None) -> str:
    return "" if ci is None or math.isnan(ci[0]) else f"[{ci[0]:+.4f}, {ci[1]:+.4f}]"


def write_report(study_dir: Path) -> Path:
    """Write report.md and its PNGs into `study_dir`; returns report.md's path."""
    record = StudyRecord.load(study_dir)
    runs = load_runs(study_dir, record.jobs)
    settings = record.settings
    paired = paired_comparisons(record.ablations, record.jobs, runs, settings["metric"])
    judged = [p for p in paired if p.comparison is not None]
    verdicts = judge([p.comparison for p in judged], settings["margin"], record.alpha_look) if judged else []
    pairs = list(zip(judged, verdicts))
    parts = [f"# Study {record.name}",
             f"Generated {datetime.now():%Y-%m-%d %H:%M} by `python -m seg.report {study_dir}`. Seeds "
             f"{settings['seeds']}" + (f", up to {settings['max_seeds']} for unresolved comparisons (sequential "
             f"design: alpha {record.alpha_look:.3g} per look)" if settings["max_seeds"] else "") +
             f"; metric {settings['metric']}; margin ± {settings['margin']:g}; alpha {settings['alpha']:g}.",
             RULES]  # fmt: skip
    completed = [r for r in runs.values() if r.completed]
    if not completed:
        parts.append(f"**Every run of this study failed ({len(runs)} runs): there is nothing to compare.**")
    else:
        parts += ["## Findings", *_findings(pairs, paired, record.alpha_look)]
        if pairs:
            plot_comparisons(pairs, settings["margin"], settings["metric"], study_dir / "comparisons.png")
            parts.append("![comparisons](comparisons.png)")
    parts += _compute(record, runs)
    parts += _failures(record, runs)
    if completed:
        by_name = {p.name: v for p, v in pairs}
        for ab in record.ablations:
            parts += _ablation_section(ab, record, runs, [p for p in paired if p.ablation == ab.name], by_name,
                                       study_dir)  # fmt: skip
    report = study_dir / "report.md"
    report.write_text("\n\n".join(p for p in parts if p) + "\n")
    return report


def _findings(pairs: list[tuple[Paired, Verdict]], paired: list[Paired], alpha: float) -> list[str]:
    lines = [f"- {v.sentence()}" for _, v in pairs]
    lines += [f"- {p.name}: not judged, no seed where both runs completed." for p in paired if p.comparison is None]
    unresolved = [v for _, v in pairs if v.kind == "unresolved"]
    if unresolved:
        n = max(v.n_seeds for v in unresolved)
        floor = min_seeds_for_sign_flip(alpha / max(1, len(pairs)))
        needed = [v.seeds_needed for v in unresolved if v.seeds_needed]
        span = f"{min(needed)}" if min(needed) == max(needed) else f"{min(needed)}-{max(needed)}"
        advice = (
            (
                f"; the spread seen suggests {span} seeds (`study.seeds=[...]`, or "
                "`study.max_seeds=...` to add seeds only where needed; completed runs are reused)"
            )
            if needed
            else ""
        )
        lines.append(
            f"**{len(unresolved)} of {len(pairs)} comparisons are unresolved with these settings.** With {n} seeds "
            f"and {len(pairs)} comparisons, a difference needs at least {floor} seeds even in the best case "
            f"(every seed agreeing){advice}. Unresolved is not 'no effect': it means these runs cannot tell."
        )
    return lines


def _compute(record: StudyRecord, runs: dict[str, Run]) -> list[str]:
    """Training time spent, and saved by sharing runs across ablations and by skipping completed runs."""
    seconds = {k: (r.summary.seconds if r.summary else 0.0) for k, r in runs.items()}
    seen, dup = set(), 0.0
    for job in record.jobs:
        dup += seconds[job.key] if job.key in seen else 0.0
        seen.add(job.key)
    rows = [["jobs the ablations ask for", len(record.jobs), ""],
            ["unique runs (shared across ablations)", len(runs), f"{sum(seconds.values()):.0f} s of training"],
            ["saved by deduplication", len(record.jobs) - len(runs), f"{dup:.0f} s"]]  # fmt: skip
    if record.invocations:
        last = record.invocations[-1]
        rows.append(["last command: completed runs skipped", last.get("skip", 0),
                     f"{last.get('seconds_skipped', 0):.0f} s not spent again"])  # fmt: skip
        rows += [[f"last command: runs {what}", last.get(key, 0), ""]
                 for key, what in (("new", "started"), ("resume", "resumed from last.pt"),
                                   ("rerun", "started again (failed attempt kept in attempts/)"))]  # fmt: skip
        rows.append(["last command: wall time", "", f"{last.get('wall_seconds', 0):.0f} s"])
    return ["## Compute", markdown_table(["", "count", "training time"], rows)]


def _failures(record: StudyRecord, runs: dict[str, Run]) -> list[str]:
    where = {}
    for j in record.jobs:
        where.setdefault(j.key, f"{j.ablation} {j.stratum} {j.arm} seed {j.seed}".replace("  ", " "))
    lines = []
    for key, run in runs.items():
        if not run.completed:
            s = run.summary
            status = "not started" if s is None else s.status.value
            lines.append(f"- `runs/{key}` ({where[key]}): {status}" + (f": {s.error}" if s and s.error else ""))
    return ["## Runs that did not complete", *lines] if lines else []


def _ablation_section(ab: Ablation, record: StudyRecord, runs: dict[str, Run], paired: list[Paired],
                      verdicts: dict[str, Verdict], study_dir: Path) -> list[str]:  # fmt: skip
    metric = record.settings["metric"]
    arms: dict[str, dict[str, list[Run]]] = {}
    for (name, stratum, arm), by_seed in cells(record.jobs).items():
        if name == ab.name:
            done = [runs[k] for _, k in sorted(by_seed.items()) if runs[k].completed]
            arms.setdefault(stratum, {})[arm] = done
    strata_col = ["stratum"] if ab.strata else []
    arm_rows, failing = [], []
    for stratum, by_arm in arms.items():
        for arm, done in by_arm.items():
            tests = [r.value("test_dice") for r in done]
            arm_rows.append([*([stratum] if ab.strata else []), arm, len(done),
                             mean_std([t for t in tests if t is not None]),
                             mean_std([r.value("best_val_dice") for r in done]),
                             mean_std([r.summary.seconds for r in done], 1)])  # fmt: skip
            bad = _failing_images([r.per_image for r in done if r.per_image])
            if bad:
                shown = ", ".join(f"`{n}`" for n in bad[:12]) + (" ..." if len(bad) > 12 else "")
                failing.append(
                    f"- {stratum} {arm}".replace("  ", " ")
                    + f": {len(bad)} images below Dice {FAIL_DICE} in all {len(done)} seeds: {shown}"
                )
    comp_rows = []
    for p in paired:
        v = verdicts.get(p.name)
        verdict_cells = ["", "", "", "", "", "", "not judged", ""] if v is None else [
            f"{v.mean_diff:+.4f}", _ci(v.ci_seeds), _ci(v.ci_hierarchical), f"{v.p_value:.3g}", f"{v.p_holm:.3g}",
            "" if math.isnan(v.p_superior) else f"{v.p_superior:.2f}", v.kind, v.seeds_needed or ""]  # fmt: skip
        comp_rows.append([p.name.split(": ", 1)[1], len(p.seeds), *verdict_cells])
    png = f"{ab.name}.png"
    plot_ablation(ab, arms, study_dir / png)
    strata = f", within each {' x '.join(ab.strata)}" if ab.strata else ""
    return [f"## {ab.name}: {ab.factor}",
            f"{ab.factor} in {ab.values} against `{ab.baseline}`{strata}. "
            f"Fixed: {record.descriptions.get(ab.name, '')}.",
            f"Reports' finding: {ab.finding}" if ab.finding else "",
            markdown_table([*strata_col, ab.factor, "seeds completed", "test Dice", "best val Dice", "training s"],
                           arm_rows),
            markdown_table(["comparison", "seeds", f"mean Δ {metric}", "CI (seeds)", "CI (seeds, images)",
                            "sign-flip p", "Holm p", "P(arm better)", "verdict", "seeds needed"], comp_rows),
            "Images that fail in every seed:\n" + "\n".join(failing) if failing else "",
            f"![{ab.name}]({png})"]  # fmt: skip


def _failing_images(tables: list[dict[str, float]]) -> list[str]:
    if not tables:
        return []
    names = set.intersection(*(set(t) for t in tables))
    return sorted(n for n in names if all(t[n] < FAIL_DICE for t in tables))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m seg.report", description=__doc__.splitlines()[0])
    parser.add_argument("study_dir", type=Path, help=f"a study directory (with {STUDY_FILE})")
    args = parser.parse_args(argv)
    with exit_on_user_error():
        if not (args.study_dir / STUDY_FILE).is_file():
            from seg.errors import ConfigError

            raise ConfigError(f"{args.study_dir} has no {STUDY_FILE}: give the directory of a study "
                              "(outputs/studies/<name>, made by `python -m seg.train -m study=...`)")  # fmt: skip
        print(f"Report: {write_report(args.study_dir)}")


if __name__ == "__main__":
    main()
