"""Re-judge a finished study under the previous rule and the current default, on the same runs (a markdown table).

    python scripts/compare_rules.py <study dir> [--seeds 5]

Previous rule: the exact sign-flip test, Holm across every comparison of the study, Bonferroni over looks, and
seeds planned for a difference only (the code before this change). Default: seg.study.rules.Rule() (paired t-test,
Holm within each ablation, O'Brien-Fleming over looks), seeds planned for whichever verdict, difference or no
difference, the fewer seeds reach. Both judge the study's runs with its looks (`study.max_seeds`, `study.looks`).
`--seeds N` judges the first N seeds of each comparison only. "Seeds asked" is what the report asks of a
comparison: the seeds it used when resolved, else the seeds it says would resolve it (> 100 counted as 100 when the
other rule names a count; left out when neither does).
"""

from __future__ import annotations

import argparse
import math
from dataclasses import replace
from pathlib import Path

from seg.markdown import markdown_table
from seg.study.power import effect_size
from seg.study.report import judged_pairs
from seg.study.results import StudyRecord, load_runs
from seg.study.rules import Rule, rule_from_settings
from seg.study.stats import Comparison, Verdict, judge, seeds_for

CAP = 100


def rules_of(record: StudyRecord) -> dict[str, Rule]:
    """The two rules, with the study's alpha and looks."""
    study = rule_from_settings(record.settings)
    return {"previous": Rule("sign_flip", "study", study.alpha, study.schedule, "bonferroni"),
            "default": Rule(alpha=study.alpha, schedule=study.schedule)}  # fmt: skip


def asked(verdict: Verdict) -> int | None:
    """Seeds the report asks of a comparison; None when it names no count (under 2 seeds, or over 100)."""
    return verdict.n_seeds if verdict.kind != "unresolved" else verdict.seeds_needed


def difference_only(verdict: Verdict, c: Comparison) -> Verdict:
    """The verdict with the previous planner's seed count: seeds for a difference only."""
    if verdict.kind != "unresolved":
        return verdict
    needed = seeds_for("difference", c.arm - c.baseline, verdict.rule, verdict.family_size, verdict.margin)
    return replace(verdict, seeds_needed=None if needed is None else max(needed, verdict.n_seeds + 1),
                   resolves_as=None if needed is None else "difference")


def first_seeds(c: Comparison, n: int | None) -> Comparison:
    """The comparison on its first n seeds (all with None)."""
    images = (c.arm_images[:n], c.baseline_images[:n]) if c.arm_images is not None else (None, None)
    return Comparison(c.name, c.arm[:n], c.baseline[:n], *images)


def _fmt_needed(v: Verdict) -> str:
    """E.g. "12 (no difference)" when the seeds aim at an interval inside the margin."""
    if v.seeds_needed is None:
        return ""
    return f"{v.seeds_needed}" + (" (no difference)" if v.resolves_as == "no difference" else "")


def _fmt_d(d: float) -> str:
    return "" if math.isnan(d) else f"{d:+.2f}"


def compare(study_dir: Path, seeds: int | None) -> str:
    record = StudyRecord.load(study_dir)
    runs = load_runs(study_dir, record.jobs, record.checkpoint)
    rules = rules_of(record)
    paired = [p for p in judged_pairs(record, runs, rules["default"])[0] if p.comparison is not None]
    comps, groups = [first_seeds(p.comparison, seeds) for p in paired], [p.ablation for p in paired]
    judged = {label: judge(comps, record.settings["margin"], rule, groups) for label, rule in rules.items()}
    judged["previous"] = [difference_only(v, c) for v, c in zip(judged["previous"], comps)]
    rows, totals, both, left_out = [], dict.fromkeys(judged, 0), dict.fromkeys(judged, 0), 0
    for c, old, new in zip(comps, judged["previous"], judged["default"]):
        rows.append([c.name, old.n_seeds, f"{old.mean_diff:+.4f}", _fmt_d(effect_size(c.arm - c.baseline)),
                     f"{old.p_value:.3g} / {old.p_holm:.3g}", old.kind, old.seeds_needed or "",
                     f"{new.p_value:.3g} / {new.p_holm:.3g}", new.kind, _fmt_needed(new)])  # fmt: skip
        if asked(old) is None and asked(new) is None:
            left_out += 1
            continue
        totals["previous"] += asked(old) or CAP
        totals["default"] += asked(new) or CAP
        if asked(old) is not None and asked(new) is not None:
            both["previous"] += asked(old)
            both["default"] += asked(new)
    head = ["comparison", "seeds", "mean Δ", "d", "previous p / adjusted", "previous verdict", "previous seeds needed",
            "default p / adjusted", "default verdict", "default seeds needed"]  # fmt: skip

    def fall(t: dict[str, int]) -> str:
        share = 1 - t["default"] / max(t["previous"], 1)
        return f"previous {t['previous']}, default {t['default']} ({share:.0%} fewer)"

    return "\n\n".join([
        f"Previous rule: {rules['previous'].describe()}. Default: {rules['default'].describe()}.",
        markdown_table(head, rows),
        f"Seeds asked in total (resolved: seeds used; unresolved: seeds needed, > {CAP} as {CAP}): {fall(totals)}"
        + (f"; {left_out} comparison(s) for which neither rule names a count (under 2 seeds, or an effect too "
           f"small for {CAP} seeds) left out" if left_out else "")
        + f". Over the comparisons both rules name a count for: {fall(both)}."])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("study_dir", type=Path)
    parser.add_argument("--seeds", type=int, default=None, help="judge only the first N seeds of each comparison")
    args = parser.parse_args()
    print(compare(args.study_dir, args.seeds))


if __name__ == "__main__":
    main()
