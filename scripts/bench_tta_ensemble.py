"""Test-time augmentation and ensembles measured on a study arm: each seed's model alone, with TTA, the ensemble of
the seeds, and the ensemble with TTA, each through seg.evaluate's own function; paired with the single models by
seed and by test image, judged with the study's statistics (seg.study.stats); inference ms per image.

    python scripts/bench_tta_ensemble.py <study dir> <arm> [--tta flips] [--out outputs/bench-tta]

Writes <out>/<setting>/ (results.json, per_image.csv, examples.png per evaluation) and <out>/tta_ensemble.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from seg.config import compose, typed_config  # noqa: E402
from seg.ensemble import arm_checkpoints  # noqa: E402
from seg.evaluate import evaluate_checkpoint  # noqa: E402
from seg.study.stats import Comparison, judge  # noqa: E402


def evaluate(checkpoints: list[Path], tta: str, out: Path, device: str) -> dict[str, Any]:
    """seg.evaluate of the checkpoints (one, or an ensemble) with `tta` on the test split, into `out`."""
    ckpt = str(checkpoints[0]) if len(checkpoints) == 1 else "[" + ",".join(map(str, checkpoints)) + "]"
    cfg = typed_config(compose("evaluate", [f"ckpt={ckpt}", f"tta={tta}", f"device={device}"]))
    out.mkdir(parents=True, exist_ok=True)
    return evaluate_checkpoint(cfg, out)


def per_image(results: dict[str, Any], names: list[str]) -> np.ndarray:
    return np.array([results["per_image"][n] for n in names])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("study", type=Path)
    parser.add_argument("arm")
    parser.add_argument("--tta", default="flips", choices=["hflip", "flips"])
    parser.add_argument("--out", type=Path, default=Path("outputs/bench-tta"))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--margin", type=float, default=0.01)
    args = parser.parse_args(argv)
    seeds = arm_checkpoints(args.study, args.arm)
    single = [evaluate([p], "none", args.out / f"single-{i}", args.device) for i, p in enumerate(seeds)]
    tta = [evaluate([p], args.tta, args.out / f"single-{i}-tta", args.device) for i, p in enumerate(seeds)]
    ensemble = evaluate(seeds, "none", args.out / "ensemble", args.device)
    ensemble_tta = evaluate(seeds, args.tta, args.out / "ensemble-tta", args.device)
    names = sorted(single[0]["per_image"])
    base = np.stack([per_image(r, names) for r in single])  # (seeds, images)
    settings = {
        f"single + TTA {args.tta}": (np.stack([per_image(r, names) for r in tta]), tta),
        f"{len(seeds)}-seed ensemble": (np.tile(per_image(ensemble, names), (len(seeds), 1)), [ensemble]),
        f"{len(seeds)}-seed ensemble + TTA {args.tta}": (np.tile(per_image(ensemble_tta, names), (len(seeds), 1)),
                                                         [ensemble_tta]),
    }  # fmt: skip
    comparisons = [Comparison(name, a.mean(1), base.mean(1), a, base) for name, (a, _) in settings.items()]
    verdicts = judge(comparisons, args.margin)
    ms = np.mean([r["inference_ms_per_image"] for r in single])
    lines = [
        f"Study `{args.study}`, arm `{args.arm}`: {len(seeds)} seeds, {len(names)} test images; differences are "
        "against the single model of the same seed, paired by seed and image (CI over seeds: the study's rule; "
        "CI over seeds then images: hierarchical bootstrap).",
        "",
        "| setting | test Dice (mean over seeds) | difference | 95% CI seeds | 95% CI seeds, images | verdict | "
        "inference ms / image |",
        "|---|---|---|---|---|---|---|",
        f"| single model | {base.mean():.4f} | | | | | {ms:.1f} |",
    ]
    for (name, (a, runs)), v in zip(settings.items(), verdicts):
        hier = v.ci_hierarchical or (float("nan"), float("nan"))
        run_ms = np.mean([r["inference_ms_per_image"] for r in runs])
        lines.append(f"| {name} | {a.mean():.4f} | {v.mean_diff:+.4f} | [{v.ci_seeds[0]:+.4f}, {v.ci_seeds[1]:+.4f}] "
                     f"| [{hier[0]:+.4f}, {hier[1]:+.4f}] | {v.kind} | {run_ms:.1f} |")  # fmt: skip
    text = "\n".join(lines) + "\n"
    (args.out / "tta_ensemble.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
