"""The study report's test-time augmentation section: test Dice without and with TTA, per arm, and the TTA effect.

A study run with `trainer.test_tta=hflip|flips` on its command line passes it to every job; each run's test pass
then also scores its checkpoints with that TTA (summary.json `test_tta`, test_per_image_tta.csv: seg.training).
Evaluation only: the key leaves it out, so the runs are the same runs. Per arm, this section pairs each seed's test
of study.checkpoint's weights with TTA against the same weights without, by seed and by test image, and judges
the difference like the study's comparisons (seg.study.stats.judge under the study's rule and margin; its own Holm
family). Runs tested without TTA (trained before it was set: a study command does not test completed runs again)
are left out and counted.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace

import numpy as np

from seg.inference import TTA_FLIPS
from seg.markdown import markdown_table
from seg.study.results import FoldMean, Run, StudyRecord, cells, image_arrays, seed_units
from seg.study.rules import Rule
from seg.study.stats import Comparison, judge
from seg.study.tables import ci_text, mean_std

FAMILY = "the TTA comparisons"
"""The Holm family of the TTA comparisons: one family of their own, judged apart from the arms' comparisons."""


@dataclass
class TtaArm:
    """One arm's runs paired with themselves under TTA: `names` are every (ablation, stratum, arm) with these runs."""

    names: list[str]
    plain: list[Run | FoldMean]  # per seed: the runs without TTA (the mean over folds with study.fold_mode=every)
    tta: list[Run | FoldMean]  # the same runs, judged by their test with TTA

    def comparison(self, tta: str) -> Comparison:
        images = image_arrays(self.tta, self.plain)
        return Comparison(f"TTA {tta} vs none, {self.names[0]}", _values(self.tta), _values(self.plain),
                          *(images or (None, None)))


def _values(units: list[Run | FoldMean]) -> np.ndarray:
    return np.array([u.value("test_dice") for u in units])


_TWIN = "tta:"  # the key prefix of a run's TTA twin among the runs seed_units pairs


def tta_arms(record: StudyRecord, runs: dict[str, Run], tested: dict[str, Run]) -> list[TtaArm]:
    """Each arm (once per set of runs: an arm shared by ablations is one) with its seeds in `tested` (run key -> the
    run judged with TTA), paired with themselves by seed (and fold) as the study pairs arms (seed_units)."""
    arms: dict[tuple[str, ...], TtaArm] = {}
    twins = {**runs, **{_TWIN + k: r for k, r in tested.items()}}
    for (ablation, stratum, arm), cell in cells(record.jobs).items():
        with_tta = {label: _TWIN + k for label, k in cell.items() if k in tested}
        units = seed_units(with_tta, cell, twins, "test_dice")
        if units:
            ids = tuple(sorted(k for k in set(cell.values()) if k in tested))
            name = f"{ablation}: {arm}" + (f" ({stratum})" if stratum else "")
            pairs = [units[s] for s in sorted(units)]
            arms.setdefault(ids, TtaArm([], [p for _, p in pairs], [t for t, _ in pairs])).names.append(name)
    return list(arms.values())


def tta_section(record: StudyRecord, runs: dict[str, Run], rule: Rule) -> list[str]:
    """The report's lines: a heading, what was done, and per arm test Dice without / with TTA and the judged
    difference; [] when no run was tested with TTA."""
    twins = {k: r.with_tta() for k, r in runs.items() if r.completed}
    tested = {k: runs[k].summary.tta for k, r in twins.items() if runs[k].summary.tta and r.value("test_dice")
              is not None}  # fmt: skip
    if not tested:
        return []
    tta = Counter(tested.values()).most_common(1)[0][0]  # the TTA most runs were tested with (trainer.test_tta)
    arms = tta_arms(record, runs, {k: twins[k] for k, name in tested.items() if name == tta})
    rule = replace(rule, family="ablation")  # the groups given below: one family
    verdicts = judge([a.comparison(tta) for a in arms], record.settings["margin"], rule, [FAMILY] * len(arms))
    rows = [["; ".join(a.names), len(a.plain), mean_std(list(_values(a.plain))), mean_std(list(_values(a.tta))),
             f"{v.mean_diff:+.4f}", ci_text(v.ci_seeds), ci_text(v.ci_hierarchical), f"{v.p_value:.3g}",
             f"{v.p_holm:.3g}", v.kind, v.seeds_needed or ""] for a, v in zip(arms, verdicts)]  # fmt: skip
    n_tested = sum(name == tta for name in tested.values())
    without = sum(not runs[k].summary.tta for k in twins)
    reasons = [(without, "tested without it (a study command does not test completed runs again)"),
               (len(tested) - n_tested, "tested with another TTA"),
               (len(twins) - without - len(tested), "whose TTA result is missing or unreadable")]  # fmt: skip
    left_out = "; ".join(f"{n} run{'s' * (n > 1)} {why}" for n, why in reasons if n)
    return [f"## Test-time augmentation (`trainer.test_tta={tta}`)",
            f"{n_tested} of {len(twins)} completed runs also tested {record.checkpoint}.pt with TTA {tta} "
            f"({len(TTA_FLIPS[tta])} views: each view's probabilities flipped back and averaged). Per arm, its test "
            "Dice without and with TTA (mean ± std over seeds) and the difference TTA − none, paired by seed and "
            f"test image and judged like the comparisons (margin ± {record.settings['margin']:g}; "
            f"{rule.describe(len(arms), FAMILY)}). TTA is evaluation only: it leaves a run's key unchanged"
            + (f"; left out: {left_out}" if left_out else "") + ".",
            markdown_table(["arm", "seeds", "test Dice", f"test Dice, TTA {tta}", "mean Δ (TTA − none)", "CI (seeds)",
                            "CI (seeds, images)", "p", "adjusted p", "verdict", "seeds needed"], rows)]  # fmt: skip
