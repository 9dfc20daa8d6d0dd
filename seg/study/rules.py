"""The verdict rule of a study: which test, which Holm family, which alpha and which looks (the option names live
in seg.constants, which the config schema reads too)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from seg.constants import FAMILIES, SPENDING, TESTS


@dataclass(frozen=True)
class Rule:
    """How a study's comparisons are judged. ``schedule``: the seed counts of the looks fixed in advance (one
    entry: a single look)."""

    test: str = "t"
    family: str = "ablation"
    alpha: float = 0.05
    schedule: tuple[int, ...] = (0,)
    spending: str = "obrien_fleming"

    def __post_init__(self) -> None:
        for value, allowed in ((self.test, TESTS), (self.family, FAMILIES), (self.spending, SPENDING)):
            if value not in allowed:
                raise ValueError(f"{value!r} is not one of {allowed}")
        if not 0 < self.alpha < 1:
            raise ValueError(f"alpha must be in (0, 1), got {self.alpha}")

    @property
    def sequential(self) -> bool:
        return len(self.schedule) > 1

    def describe(self, family_size: int | None = None, family_name: str | None = None) -> str:
        """E.g. "paired t-test (light-tail calibrated), Holm within ablation_x (4 comparisons), alpha 0.05,
        O'Brien-Fleming alpha spending over looks at 3, 6, 9 seeds"."""
        test = {"t": "paired t-test (light-tail calibrated)", "sign_flip": "exact sign-flip test"}[self.test]
        where = "the study" if self.family == "study" or family_name == "study" else family_name or "each ablation"
        size = f" ({family_size} comparison{'s' * (family_size != 1)})" if family_size is not None else ""
        looks = ""
        if self.sequential:
            spending = {"obrien_fleming": "O'Brien-Fleming alpha spending", "pocock": "Pocock alpha spending",
                        "bonferroni": "Bonferroni"}[self.spending]  # fmt: skip
            looks = f", {spending} over looks at {', '.join(map(str, self.schedule))} seeds"
        return f"{test}, Holm within {where}{size}, alpha {self.alpha:g}{looks}"


def look_schedule(first: int, max_seeds: int | None, n_looks: int) -> list[int]:
    """Seed counts at each look, fixed in advance: evenly spaced from ``first`` to ``max_seeds``."""
    if not max_seeds or n_looks < 2 or max_seeds <= first:
        return [first]
    return sorted({round(first + (max_seeds - first) * k / (n_looks - 1)) for k in range(n_looks)})


def rule_from_settings(settings: dict[str, Any]) -> Rule:
    """The rule of a study from its settings (seg.schema.StudyConfig as a dict, as study.json keeps it)."""
    seeds = len(settings["seeds"])
    schedule = look_schedule(seeds, settings.get("max_seeds"), settings.get("looks", 1))
    return Rule(settings.get("test", "t"), settings.get("family", "ablation"), settings["alpha"], tuple(schedule),
                settings.get("spending", "obrien_fleming"))  # fmt: skip
