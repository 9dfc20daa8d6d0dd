"""The planner: per comparison, the seeds for 80% power under the study's rule, the runs and hours they cost at the
measured run times, and which comparisons a budget of hours can resolve (`python -m seg.report <dir> --plan`).

Seeds: the verdict's own "seeds needed", the rule the report's `study.max_seeds` advice uses too: the fewer of
the seeds that give a difference 80% power (seg.study.power.seeds_to_resolve for the effect seen, d = mean / sd of
the per-seed differences, at the Holm worst case alpha / family size) and the seeds that put the interval of the
mean inside ± margin with probability 0.8 (seg.study.power.seeds_to_equivalence: a "no difference"). A resolved
comparison is planned for what a replication of its verdict would need.
Runs: the arm and the baseline for every seed beyond those completed (a baseline shared by the comparisons of
one stratum is counted once). Hours: those runs at the mean training time of the same arm's completed runs, on
the machine that ran them.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

from seg.markdown import markdown_table
from seg.study.power import effect_size
from seg.study.results import Paired, Run, StudyRecord, cells
from seg.study.rules import Rule
from seg.study.stats import Verdict, seeds_for

POWER = 0.8


@dataclass(frozen=True)
class PlanRow:
    """One comparison's plan. ``new_runs``: {(ablation, stratum, arm, seed index)} it needs beyond completed."""

    name: str
    kind: str
    n_seeds: int
    d: float
    seeds: int | None  # total seeds for 80% power (a resolved comparison: what a replication needs); None: > 100
    aim: str | None  # the verdict those seeds aim at: "difference" or "no difference"
    new_runs: frozenset[tuple[str, str, str, int]]
    seconds: dict[tuple[str, str, str], float]  # seconds per seed of each cell it needs (K runs: fold_mode=every)
    runs_per_seed: int = 1  # study.fold_mode=every: K (a seed index in new_runs is one run per fold)


def plan(pairs: list[tuple[Paired, Verdict]], record: StudyRecord, runs: dict[str, Run]) -> list[PlanRow]:
    """The plan of every judged comparison (see the module docstring)."""
    seconds: dict[tuple[str, str, str], float] = {}
    per_seed = record.runs_per_seed
    for cell, labels in cells(record.jobs).items():
        done = [runs[k].summary.seconds for k in labels.values() if runs[k].completed]
        if done:  # a seed's cost: its runs (one per fold with study.fold_mode=every)
            seconds[cell] = statistics.mean(done) * per_seed
    rows = []
    for p, v in pairs:
        diffs = p.comparison.arm - p.comparison.baseline
        d = effect_size(diffs)
        total, aim = v.seeds_needed, v.resolves_as
        if v.kind != "unresolved":  # what a replication of the verdict needs
            total, aim = seeds_for(v.kind, diffs, v.rule, v.family_size, v.margin), v.kind
        needed = set()
        if total is not None and v.kind == "unresolved":
            for arm in (p.arm, p.baseline):
                needed |= {(p.ablation, p.stratum, arm, i) for i in range(v.n_seeds, total)}
        cost = {c: s for c, s in seconds.items() if c[:2] == (p.ablation, p.stratum)}
        rows.append(PlanRow(p.name, v.kind, v.n_seeds, d, total, aim if total else None, frozenset(needed), cost,
                            per_seed))
    return rows


def hours(rows: list[PlanRow]) -> float:
    """Training hours of the union of the rows' new runs (nan when a needed arm has no measured run)."""
    total = 0.0
    for ablation, stratum, arm, _ in set().union(*(r.new_runs for r in rows)) if rows else ():
        cost = next((r.seconds.get((ablation, stratum, arm)) for r in rows
                     if (ablation, stratum, arm) in r.seconds), None)  # fmt: skip
        total += math.nan if cost is None else cost / 3600
    return total


def within_budget(rows: list[PlanRow], budget_hours: float) -> list[PlanRow]:
    """The comparisons a budget resolves: the still unresolved ones with a seed count, cheapest added first,
    as long as the union of their runs fits the budget (shared baselines paid once)."""
    chosen: list[PlanRow] = []
    todo = [r for r in rows if r.kind == "unresolved" and r.seeds is not None]
    while todo:
        best = min(todo, key=lambda r: hours([*chosen, r]))
        if not hours([*chosen, best]) <= budget_hours:
            break
        chosen.append(best)
        todo.remove(best)
    return chosen


def plan_lines(rows: list[PlanRow], rule: Rule, budget_hours: float | None) -> list[str]:
    """The report's "Plan" section: a markdown table, and what the budget buys."""
    table = [[r.name, r.kind, r.n_seeds, "" if math.isnan(r.d) else f"{r.d:+.2f}",
              r.seeds or "> 100", r.aim or "",
              len(r.new_runs) * r.runs_per_seed, _hours(hours([r]))] for r in rows]  # fmt: skip
    lines = [f"Seeds for a verdict with {POWER:.0%} probability at the mean and spread seen: a difference under the "
             f"study's rule ({rule.describe()}; planned at the Holm worst case, alpha / family size), or no "
             "difference (the interval of the mean inside ± margin), whichever needs fewer; runs and training "
             "hours beyond those done, at the measured run times.",
             markdown_table(["comparison", "verdict", "seeds", "d", "seeds needed", "as", "new runs", "hours"],
                            table)]
    open_rows = [r for r in rows if r.kind == "unresolved" and r.seeds is not None]
    if open_rows:
        runs = len(set().union(*(r.new_runs for r in open_rows))) * open_rows[0].runs_per_seed
        lines.append(f"All of them: {runs} runs, "
                     f"{_hours(hours(open_rows))} hours of training.")
    if budget_hours is not None:
        chosen = within_budget(rows, budget_hours)
        names = ", ".join(r.name for r in chosen) or ("none" if open_rows else "none is left unresolved")
        lines.append(f"A budget of {budget_hours:g} hours resolves (at {POWER:.0%} power each): {names}"
                     + (f" ({_hours(hours(chosen))} hours)." if chosen else "."))
    return lines


def _hours(h: float) -> str:
    return "unmeasured" if math.isnan(h) else f"{h:.2f}"
