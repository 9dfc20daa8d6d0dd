"""The study report: `python -m seg.report <study dir>` renders it again (each study command writes it at its end).

Reads <study dir>/study.json (the ablations and the run of each job, seg.study.results) and the runs, judges
every comparison (arm vs baseline within a stratum, paired by seed and test image) with seg.study.stats.judge
under the study's rule (test, Holm family, alpha, looks: seg.study.rules), and writes <study dir>/report.md with
comparisons.png, one <ablation>.png per ablation and a plan (seg.study.planner). `--plan` prints the plan;
`--budget-hours H` adds what H hours of training can resolve.
"""

from __future__ import annotations

import argparse
import math
from datetime import datetime
from pathlib import Path

from seg.errors import exit_on_user_error
from seg.files import atomic_write_text
from seg.markdown import markdown_table
from seg.study.figures import debug_note, write_paper_outputs
from seg.study.plan import Ablation
from seg.study.planner import plan, plan_lines
from seg.study.plots import plot_ablation, plot_comparisons
from seg.study.power import min_seeds
from seg.study.results import STUDY_FILE, Paired, Run, StudyRecord, cells, load_runs, paired_comparisons
from seg.study.rules import Rule, rule_from_settings
from seg.study.stats import Verdict, judge
from seg.study.tables import ci_text, mean_std
from seg.study.tta import tta_section

FAIL_DICE = 0.5
"""A test image "fails" in a run when its Dice is below this; the report lists images that fail in every seed."""

RULES = (
    "How to read the verdicts: each comparison pairs the arm with its baseline seed by seed (same data order and "
    "initialisation) and, for test Dice, image by image. **difference**: the study's test over the per-seed "
    "differences, Holm-corrected within its family (and spent over the looks of a sequential study), gives "
    "p <= alpha. It says the arms do not behave alike: had they been one config under two names, differences "
    "this far to one side would be that rare. It does not by itself show that the mean differs (a skewed "
    "difference, say an arm that now and then collapses but is otherwise better, can have mean 0); the mean and "
    "its CI are estimates, and a difference line says so when a CI of the mean holds 0. **no difference**: the "
    "interval of the mean difference lies inside ± margin (needs >= 3 seeds). **unresolved**: neither; the line "
    "says how many seeds would resolve it at the mean and spread seen, as a difference or as no difference, "
    "whichever needs fewer (80% probability). The paired t-test (its p calibrated for light tails) assumes that a "
    "per-seed difference behaves like the difference of two independent runs with continuous, single-mode "
    "results (light- or heavy-tailed, skewed or now and then collapsing: checked by simulation, see the README); "
    "runs that land on one of two results, at 3-4 seeds, or few-valued differences make it call too many "
    "differences; the exact sign-flip "
    "test assumes only exchangeable arms, but with n seeds cannot give p below 2/2^n. P(arm better) is the "
    "probability that the arm beats the baseline on a new seed. Training time is the sum of the runs' epoch times."
)


def judged_pairs(record: StudyRecord, runs: dict[str, Run], rule: Rule) -> tuple[list[Paired],
                                                                               list[tuple[Paired, Verdict]]]:
    """Every comparison of the study, and each judged one (both arms completed at a seed) with its verdict."""
    paired = paired_comparisons(record.ablations, record.jobs, runs, record.settings["metric"])
    judged = [p for p in paired if p.comparison is not None]
    verdicts = judge([p.comparison for p in judged], record.settings["margin"], rule,
                     [p.ablation for p in judged]) if judged else []  # fmt: skip
    return paired, list(zip(judged, verdicts))


def write_report(study_dir: Path, budget_hours: float | None = None) -> Path:
    """Write report.md and its PNGs into `study_dir`; returns report.md's path."""
    record = StudyRecord.load(study_dir)
    runs = load_runs(study_dir, record.jobs, record.checkpoint)
    settings = record.settings
    rule = rule_from_settings(settings)
    paired, pairs = judged_pairs(record, runs, rule)
    parts = [f"# Study {record.name}",
             f"Generated {datetime.now():%Y-%m-%d %H:%M} by `python -m seg.report {study_dir}`. Seeds "
             f"{settings['seeds']}" + (f", up to {settings['max_seeds']} for unresolved comparisons (sequential "
             f"design: the last look judges at nominal p <= {record.alpha_look:.3g})" if rule.sequential else "") +
             f"; metric {settings['metric']}" + (f" of {record.checkpoint}.pt (study.checkpoint={record.checkpoint})"
                                                 if settings["metric"] == "test_dice" else "") +
             f"; margin ± {settings['margin']:g}. Verdict rule: {rule.describe()}.",
             _folds_line(settings.get("folds"), settings.get("fold_mode", "per_seed")), RULES]  # fmt: skip
    completed = [r for r in runs.values() if r.completed]
    if not completed:
        parts.append(f"**Every run of this study failed ({len(runs)} runs): there is nothing to compare.**")
    else:
        parts += ["## Findings", *_findings(pairs, paired, rule)]
        if pairs:
            plot_comparisons(pairs, settings["margin"], settings["metric"], study_dir / "comparisons.png",
                             debug_note(runs))  # fmt: skip
            parts.append("![comparisons](comparisons.png)")
    parts += tta_section(record, runs, rule)
    if pairs:
        parts += ["## Plan", *plan_lines(plan(pairs, record, runs), rule, budget_hours)]
    parts += _compute(record, runs)
    parts += _failures(record, runs)
    if completed:
        by_name = {p.name: v for p, v in pairs}
        for ab in record.ablations:
            parts += _ablation_section(ab, record, runs, [p for p in paired if p.ablation == ab.name], by_name,
                                       study_dir)  # fmt: skip
    report = study_dir / "report.md"
    atomic_write_text(report, "\n\n".join(p for p in parts if p) + "\n")
    write_paper_outputs(study_dir, report, record, runs)  # tables/*.csv and *.tex, qualitative.png, seed curves
    return report


def _folds_line(folds: int | None, mode: str) -> str:
    if not folds:
        return ""
    split = f"a {folds}-fold split of train+val (data.split_seed fixed); the test set is the same for every run."
    if mode == "every":
        return (f"Every seed trains on every fold (study.fold_mode=every): {folds} runs per seed and arm on {split} "
                "Arms are paired on the same seed and fold; each seed's differences are averaged over the folds "
                "where both arms completed, so the seed stays the unit the tests count.")  # fmt: skip
    return f"Split varied with the seed (study.fold_mode=per_seed): seed s trains on fold s % {folds} of {split}"


def _findings(pairs: list[tuple[Paired, Verdict]], paired: list[Paired], rule: Rule) -> list[str]:
    lines = [f"- {v.sentence()}" for _, v in pairs]
    lines += [f"- {p.name}: not judged, no seed where both runs completed." for p in paired if p.comparison is None]
    unresolved = [v for _, v in pairs if v.kind == "unresolved"]
    if unresolved:
        n = max(v.n_seeds for v in unresolved)
        floor = min_seeds(rule.test, rule.alpha / max(v.family_size for v in unresolved))
        needed = sorted(v.seeds_needed for v in unresolved if v.seeds_needed)
        advice = ""
        if needed:
            span = f"{needed[0]}" if needed[0] == needed[-1] else f"{needed[0]}-{needed[-1]}"
            advice = (f"; the spread seen suggests {span} seeds (`study.seeds=[...]`, or `study.max_seeds=...` to add "
                      "seeds only where needed; completed runs are reused)")  # fmt: skip
        lines.append(
            f"**{len(unresolved)} of {len(pairs)} comparisons are unresolved with these settings** ({n} seeds). "
            f"Under this rule a difference needs at least {floor} seeds even in the best case{advice}. Unresolved "
            "is not 'no effect': it means these runs cannot tell."
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
        fold = "" if j.fold is None else f" fold {j.fold}"
        where.setdefault(j.key, f"{j.ablation} {j.stratum} {j.arm} seed {j.seed}{fold}".replace("  ", " "))
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
        verdict_cells = ["", "", "", "", "", "", "", "not judged", ""] if v is None else [
            f"{v.mean_diff:+.4f}", ci_text(v.ci_seeds), ci_text(v.ci_hierarchical), f"{v.p_value:.3g}",
            f"{v.p_holm:.3g}", v.family,
            "" if math.isnan(v.p_superior) else f"{v.p_superior:.2f}", v.kind, v.seeds_needed or ""]  # fmt: skip
        comp_rows.append([p.name.split(": ", 1)[1], len(p.seeds), *verdict_cells])
    png = f"{ab.name}.png"
    plot_ablation(ab, arms, study_dir / png, debug_note(runs))
    strata = f", within each {' x '.join(ab.strata)}" if ab.strata else ""
    return [f"## {ab.name}: {ab.factor}",
            f"{ab.factor} in {ab.values} against `{ab.baseline}`{strata}. "
            f"Fixed: {record.descriptions.get(ab.name, '')}.",
            f"Reports' finding: {ab.finding}" if ab.finding else "",
            markdown_table([*strata_col, ab.factor, "runs completed (seed x fold)" if record.runs_per_seed > 1
                            else "seeds completed", "test Dice", "best val Dice", "training s"], arm_rows),  # fmt: skip
            markdown_table(["comparison", "seeds", f"mean Δ {metric}", "CI (seeds)", "CI (seeds, images)",
                            f"{_test_label(record)} p", "adjusted p", "Holm family", "P(arm better)", "verdict",
                            "seeds needed"], comp_rows),
            "Images that fail in every seed:\n" + "\n".join(failing) if failing else "",
            f"![{ab.name}]({png})"]  # fmt: skip


def _failing_images(tables: list[dict[str, float]]) -> list[str]:
    if not tables:
        return []
    names = set.intersection(*(set(t) for t in tables))
    return sorted(n for n in names if all(t[n] < FAIL_DICE for t in tables))


def _test_label(record: StudyRecord) -> str:
    return {"t": "t-test", "sign_flip": "sign-flip"}[rule_from_settings(record.settings).test]


def print_plan(study_dir: Path, budget_hours: float | None) -> None:
    """`--plan`: the plan section alone, on stdout."""
    record = StudyRecord.load(study_dir)
    runs = load_runs(study_dir, record.jobs, record.checkpoint)
    rule = rule_from_settings(record.settings)
    _, pairs = judged_pairs(record, runs, rule)
    print("\n\n".join(plan_lines(plan(pairs, record, runs), rule, budget_hours)) if pairs else
          "No comparison has a seed where both arms completed: nothing to plan from.")  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m seg.report", description=__doc__.splitlines()[0])
    parser.add_argument("study_dir", type=Path, help=f"a study directory (with {STUDY_FILE})")
    parser.add_argument("--plan", action="store_true", help="print the seeds, runs and hours each comparison needs")
    parser.add_argument("--budget-hours", type=float, default=None, help="name the comparisons H hours resolve")
    args = parser.parse_args(argv)
    with exit_on_user_error():
        if not (args.study_dir / STUDY_FILE).is_file():
            from seg.errors import ConfigError
            from seg.rundir import STUDIES

            raise ConfigError(f"{args.study_dir} has no {STUDY_FILE}: give the directory of a study "
                              f"(outputs/{STUDIES}/<name>, made by `python -m seg.train -m study=...`)")  # fmt: skip
        if args.plan:
            print_plan(args.study_dir, args.budget_hours)
        else:
            print(f"Report: {write_report(args.study_dir, args.budget_hours)}")


if __name__ == "__main__":
    main()
