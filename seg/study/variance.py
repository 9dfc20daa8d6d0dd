"""Where an arm's spread over seeds comes from (`study.vary`), in the spirit of Bouthillier et al. (MLSys 2021).

A run's seed drives three random sources (seg.engine.runtime.Seeds): weight initialisation, the order of the
training images and the augmentation draws. With `study.vary=[init, order, augmentation]` every arm also trains
over the study's seeds with one source varied at a time, the others fixed at the arm's first (base) seed; the
base seed's run is shared by every source. Per arm this gives the standard deviation of the metric when only that
source varies, next to `together` (the study's ordinary seeds, every source varied at once).

A source's *share* is its variance over the sum of the varied sources' variances. With n seeds a variance has
n - 1 degrees of freedom, so shares from 3 seeds are rough; when the sources act independently and add up, the
sources' variances sum to about the `together` variance (the ratio is printed).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from seg.study.plan import Job
from seg.study.results import Run

TOGETHER = "together"
"""The row of the ordinary seeds (Job.source None): every source varied at once."""


@dataclass(frozen=True)
class SourceSpread:
    """One arm's spread per source: std of the metric over the completed seeds (ddof 1), their count, its share."""

    ablation: str
    stratum: str
    arm: str
    std: dict[str, float]  # source or TOGETHER -> std (nan with fewer than 2 completed seeds)
    n: dict[str, int]
    share: dict[str, float]  # source -> its variance / the sum of the sources' variances (nan when that is 0)

    @property
    def additivity(self) -> float:
        """Sum of the sources' variances / the variance with every source varied (nan when not measured)."""
        total = sum(v**2 for k, v in self.std.items() if k != TOGETHER)
        together = self.std.get(TOGETHER, math.nan) ** 2
        return total / together if together > 0 else math.nan


def source_spreads(jobs: list[Job], runs: dict[str, Run], metric: str) -> list[SourceSpread]:
    """A SourceSpread per arm of the study that has jobs with a `source` (none without study.vary), in plan order."""
    values: dict[tuple[str, str, str], dict[str, dict[int, float]]] = {}
    for job in jobs:
        per_source = values.setdefault((job.ablation, job.stratum, job.arm), {})
        value = runs[job.key].value(metric)
        if value is not None:
            per_source.setdefault(job.source or TOGETHER, {})[job.seed] = value
    out = []
    for (ablation, stratum, arm), per_source in values.items():
        if set(per_source) <= {TOGETHER}:
            continue
        std = {s: float(np.std(list(v.values()), ddof=1)) if len(v) > 1 else math.nan for s, v in per_source.items()}
        variance = {s: d**2 for s, d in std.items() if s != TOGETHER and not math.isnan(d)}
        total = sum(variance.values())
        share = {s: v / total if total > 0 else math.nan for s, v in variance.items()}
        out.append(SourceSpread(ablation, stratum, arm, std, {s: len(v) for s, v in per_source.items()}, share))
    return out


def variance_lines(spreads: list[SourceSpread], metric: str) -> list[str]:
    """The report's section on the sources of spread (markdown lines; [] without study.vary)."""
    if not spreads:
        return []
    sources = list(dict.fromkeys(s for sp in spreads for s in sp.std if s != TOGETHER))
    lines = ["## Where the spread comes from (study.vary)", "",
             f"Std of {metric} over seeds with one source varied, the others at the arm's first seed (its share of "
             f"the sources' summed variance), and with every source varied together. Shares from few seeds are rough "
             f"(a variance from n seeds has n - 1 degrees of freedom); sum/together near 1: the sources add up.", "",
             "| arm | " + " | ".join(sources) + f" | {TOGETHER} | sum/together |",
             "|---|" + "---|" * (len(sources) + 2)]  # fmt: skip
    for sp in spreads:
        arm = f"{sp.ablation}: {sp.arm}" + (f" ({sp.stratum})" if sp.stratum else "")
        cells = [_cell(sp.std.get(s, math.nan), sp.n.get(s, 0), sp.share.get(s)) for s in sources]
        cells += [_cell(sp.std.get(TOGETHER, math.nan), sp.n.get(TOGETHER, 0)), f"{sp.additivity:.2f}"]
        lines.append(f"| {arm} | " + " | ".join(cells) + " |")
    return lines


def _cell(std: float, n: int, share: float | None = None) -> str:
    if math.isnan(std):
        return f"- (n={n})"
    return f"{std:.4f} (n={n}" + ("" if share is None or math.isnan(share) else f", {share:.0%}") + ")"
