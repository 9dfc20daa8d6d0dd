"""Ablation report: `python -m seg.report <sweep dir> [<sweep dir> ...] [--out outputs/ablations]`.

Each sweep directory is one ablation (a multirun of `experiment=ablation_*`): its jobs differ in the
ablated factor (`ablation.factor` in the experiment config), possibly in other keys (strata, e.g. the
model) and in the seed. Writes <out>/report.md with, per ablation, a table of mean ± std over seeds of
best val Dice, test Dice, last-epoch train Dice and training time per arm; the difference of each arm
against the baseline, paired by seed, with its spread and the number of seeds it holds in; and
<out>/<ablation>.png with val Dice and val loss curves (mean over seeds, band of ± 1 std) per arm.
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from seg.sweep.results import JobResult, load_sweep, markdown_table  # noqa: E402

METRICS = {"best val Dice": "best_val_dice", "test Dice": "test_dice"}
CURVES = {"val/dice": "val Dice", "val/loss": "val loss"}


@dataclass
class Ablation:
    """The completed jobs of one ablation sweep, grouped by stratum and arm."""

    name: str
    sweep_dir: Path
    factor: str
    baseline: str
    finding: str | None
    strata_keys: list[str]
    jobs: list[JobResult]
    n_unfinished: int

    def stratum(self, job: JobResult) -> str:
        """The job's values of the other swept keys, e.g. `model=unet` ('' when there are none)."""
        return " ".join(f"{k}={job.override_map()[k]}" for k in self.strata_keys)

    def groups(self) -> dict[str, dict[str, dict[str, JobResult]]]:
        """{stratum: {arm: {seed: job}}}, arms in sweep order with the baseline first."""
        out: dict[str, dict[str, dict[str, JobResult]]] = {}
        for job in sorted(self.jobs, key=lambda j: self.arm(j) != self.baseline):
            out.setdefault(self.stratum(job), {}).setdefault(self.arm(job), {})[seed_of(job)] = job
        return out

    def arm(self, job: JobResult) -> str:
        return job.override_map()[self.factor]


def seed_of(job: JobResult) -> str:
    return job.override_map().get("seed", "0")


def load_ablation(sweep_dir: Path) -> Ablation:
    """Read a sweep directory; the factor and baseline come from the jobs' `ablation` config node, else
    the first swept key other than the seed and its first value."""
    jobs = load_sweep(sweep_dir)
    if not jobs:
        raise SystemExit(f"error: no jobs (*/.hydra/overrides.yaml) in {sweep_dir}")
    values: dict[str, list[str]] = {}
    for job in jobs:
        for key, value in job.override_map().items():
            values.setdefault(key, [])
            if value not in values[key]:
                values[key].append(value)
    swept = [k for k, v in values.items() if len(v) > 1 and k != "seed"]
    spec = jobs[0].config().get("ablation") or {}
    factor = spec.get("factor") or (swept[0] if swept else "seed")
    if factor not in values:
        raise SystemExit(f"error: the jobs in {sweep_dir} do not override the ablated key {factor!r}")
    done = [j for j in jobs if j.status == "completed" and factor in j.override_map()]
    return Ablation(
        name=jobs[0].config().get("name", sweep_dir.name),
        sweep_dir=sweep_dir,
        factor=factor,
        baseline=str(spec.get("baseline") or values[factor][0]),
        finding=spec.get("finding"),
        strata_keys=[k for k in swept if k != factor],
        jobs=done,
        n_unfinished=len(jobs) - len(done),
    )


def mean_std(values: Iterable[float | None], digits: int = 4, signed: bool = False) -> str:
    """`mean ± std` (sample std over seeds; `mean` alone for one value; '' for none)."""
    xs = [v for v in values if v is not None]
    if not xs:
        return ""
    sign = "+" if signed else ""
    text = f"{statistics.mean(xs):{sign}.{digits}f}"
    return text + (f" ± {statistics.stdev(xs):.{digits}f}" if len(xs) > 1 else "")


def last_train_dice(job: JobResult) -> float | None:
    rows = job.metrics()
    return rows[-1]["train/dice"] if rows else None


def arm_table(ab: Ablation) -> str:
    header = [*ab.strata_keys, ab.factor, "seeds", *METRICS, "train Dice (last epoch)", "training time (s)"]
    rows = []
    for stratum, arms in ab.groups().items():
        for arm, by_seed in arms.items():
            jobs = list(by_seed.values())
            rows.append(
                [
                    *[s.split("=", 1)[1] for s in stratum.split()],
                    arm,
                    len(jobs),
                    *[mean_std(getattr(j, attr) for j in jobs) for attr in METRICS.values()],
                    mean_std(last_train_dice(j) for j in jobs),
                    mean_std((j.seconds for j in jobs), digits=1),
                ]
            )
    return markdown_table(header, rows)


def differences(ab: Ablation) -> tuple[str, list[str]]:
    """The paired-difference table against the baseline, and one verdict line per comparison."""
    header = [*ab.strata_keys, "comparison", "seeds", *(f"Δ {m}" for m in METRICS), "seeds better (test)"]
    rows, verdicts = [], []
    for stratum, arms in ab.groups().items():
        base = arms.get(ab.baseline, {})
        for arm, by_seed in arms.items():
            seeds = sorted(set(by_seed) & set(base))
            if arm == ab.baseline or not seeds:
                continue
            deltas = {
                attr: [_delta(getattr(by_seed[s], attr), getattr(base[s], attr)) for s in seeds]
                for attr in METRICS.values()
            }
            test = [d for d in deltas["test_dice"] if d is not None]
            better = sum(d > 0 for d in test)
            rows.append(
                [
                    *[s.split("=", 1)[1] for s in stratum.split()],
                    f"{arm} − {ab.baseline}",
                    len(seeds),
                    *[mean_std(deltas[attr], signed=True) for attr in METRICS.values()],
                    f"{better}/{len(test)}",
                ]
            )
            verdicts.append(_verdict(", ".join(filter(None, [ab.name, stratum])), arm, ab.baseline, test, better))
    return markdown_table(header, rows), verdicts


def _delta(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def _verdict(where: str, arm: str, baseline: str, deltas: list[float], better: int) -> str:
    """One line: the test Dice difference, and whether one arm wins in every seed or it is seed noise."""
    head = f"- {where}: `{arm}` − `{baseline}`"
    if not deltas:
        return f"{head}: no test Dice to compare."
    n = len(deltas)
    if n > 1 and better in (0, n):
        conclusion = f"`{arm if better else baseline}` better in all {n} seeds"
    else:
        conclusion = f"`{arm}` better in {better} of {n} seeds: not distinguishable from seed noise"
    return f"{head} = {mean_std(deltas, signed=True)} test Dice; {conclusion}."


def plot_curves(ab: Ablation, path: Path) -> None:
    """Val Dice and val loss per epoch: one column per stratum, one line per arm (mean, ± 1 std band)."""
    groups = ab.groups()
    fig, axes = plt.subplots(2, len(groups), figsize=(6 * len(groups), 8), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for col, (stratum, arms) in enumerate(groups.items()):
        for i, (arm, by_seed) in enumerate(arms.items()):
            histories = [j.metrics() for j in by_seed.values()]
            for row, (key, label) in enumerate(CURVES.items()):
                epochs = sorted({r["epoch"] for h in histories for r in h})
                per_epoch = [[r[key] for h in histories for r in h if r["epoch"] == e] for e in epochs]
                mean = [statistics.mean(v) for v in per_epoch]
                std = [statistics.stdev(v) if len(v) > 1 else 0.0 for v in per_epoch]
                ax = axes[row, col]
                color = colors[i % len(colors)]
                ax.plot(epochs, mean, color=color, label=f"{arm} (n={len(histories)})")
                top = 1.0 if key == "val/dice" else float("inf")  # the band stays within the metric's range
                lower = [max(m - s, 0.0) for m, s in zip(mean, std)]
                ax.fill_between(epochs, lower, [min(m + s, top) for m, s in zip(mean, std)], color=color, alpha=0.2)
                ax.set(title=f"{label} {stratum}".strip(), xlabel="epoch", ylabel=label)
    for ax in axes.flat:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(title=ab.factor, fontsize=8)
    fig.suptitle(f"{ab.name}: mean over seeds, band ± 1 std")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def settings_line(ab: Ablation) -> str:
    """The settings shared by the jobs, from the first job's config."""
    cfg = ab.jobs[0].config() if ab.jobs else None
    if cfg is None:
        return "no completed jobs"
    seeds = sorted({seed_of(j) for j in ab.jobs}, key=int)
    return (
        f"data `{cfg.data.name}` (`{cfg.data.root}`), {cfg.data.image_size} px, batch {cfg.data.batch_size}, "
        f"{cfg.trainer.epochs} epochs, {cfg.optimizer.name} lr {cfg.optimizer.lr:g} wd "
        f"{cfg.optimizer.weight_decay:g}, base_channels {cfg.model.base_channels}, seeds {', '.join(seeds)}"
    )


def section(ab: Ablation, out: Path) -> tuple[str, list[str]]:
    """The report section of one ablation (its PNG written into `out`) and its verdict lines."""
    png = out / f"{ab.name}.png"
    plot_curves(ab, png)
    diff_table, verdicts = differences(ab)
    hours = sum(j.seconds or 0.0 for j in ab.jobs) / 3600
    parts = [
        f"## {ab.name}: {ab.factor}",
        f"Sweep `{ab.sweep_dir}`: {len(ab.jobs)} completed jobs"
        + (f", {ab.n_unfinished} not completed (left out)" if ab.n_unfinished else "")
        + f"; {hours:.2f} h of training in all. Settings: {settings_line(ab)}.",
        f"Reports' finding: {ab.finding}" if ab.finding else "",
        "### Per arm (mean ± std over seeds)",
        arm_table(ab),
        f"### Against `{ab.baseline}` (paired by seed: mean ± std of the per-seed differences)",
        diff_table,
        "\n".join(verdicts),
        f"![{ab.name}]({png.name})",
    ]
    return "\n\n".join(p for p in parts if p), verdicts


def write_report(sweep_dirs: list[Path], out: Path) -> Path:
    """Write out/report.md and one PNG per ablation; returns the report's path."""
    out.mkdir(parents=True, exist_ok=True)
    sections, verdicts = [], []
    for sweep_dir in sweep_dirs:
        text, lines = section(load_ablation(sweep_dir), out)
        sections.append(text)
        verdicts += lines
    head = [
        "# Ablation report",
        f"Generated {datetime.now():%Y-%m-%d %H:%M} by `python -m seg.report` from "
        + ", ".join(f"`{d}`" for d in sweep_dirs)
        + ".",
        "A difference counts as a finding when it has the same sign in every seed; otherwise it is "
        "reported as not distinguishable from seed noise. Training time is the sum of a job's epoch times: "
        "jobs that ran at the same time (joblib) or on a busy machine slowed each other down.",
        "## Findings at a glance",
        "\n".join(verdicts),
    ]
    report = out / "report.md"
    report.write_text("\n\n".join(head + sections) + "\n")
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m seg.report", description=__doc__.splitlines()[0])
    parser.add_argument("sweep_dirs", nargs="+", type=Path, help="multirun sweep directories, one per ablation")
    parser.add_argument("--out", type=Path, default=Path("outputs/ablations"), help="where report.md goes")
    args = parser.parse_args(argv)
    print(f"Report: {write_report(args.sweep_dirs, args.out)}")


if __name__ == "__main__":
    main()
