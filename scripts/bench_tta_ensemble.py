"""Test-time augmentation and ensembles measured on a study arm: each seed's model alone, with TTA, the ensemble of
the seeds, and the ensemble with TTA, each through seg.evaluate's own function; paired with the single models by
seed and by test image, judged with the study's statistics (seg.study.stats); inference ms per image (one thread).

    python scripts/bench_tta_ensemble.py <study dir> <arm> [--tta flips] [--out outputs/bench-tta]

Writes <out>/<setting>/ (results.json, per_image.csv, examples.png per evaluation; reused by a rerun) and
<out>/tta_ensemble.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from seg.config import compose, typed_config  # noqa: E402
from seg.ensemble import arm_checkpoints, load_members  # noqa: E402
from seg.evaluate import evaluate_checkpoint  # noqa: E402
from seg.study.stats import Comparison, judge  # noqa: E402


def evaluate(checkpoints: list[Path], tta: str, out: Path, device: str) -> dict[str, Any]:
    """seg.evaluate of the checkpoints (one, or an ensemble) with `tta` on the test split, into `out`; an earlier
    result there is reused (a rerun measures only what is missing)."""
    if (out / "results.json").is_file():
        return json.loads((out / "results.json").read_text())
    ckpt = str(checkpoints[0]) if len(checkpoints) == 1 else "[" + ",".join(map(str, checkpoints)) + "]"
    cfg = typed_config(compose("evaluate", [f"ckpt={ckpt}", f"tta={tta}", f"device={device}"]))
    out.mkdir(parents=True, exist_ok=True)
    return evaluate_checkpoint(cfg, out)


def inference_ms(seeds: list[Path], tta: str, rounds: int = 5, batch: int = 16) -> list[float]:
    """ms per image of the forward passes of: one model, with `tta`, the ensemble, the ensemble with `tta`, on one
    CPU thread, the four interleaved `rounds` times (medians): robust to a machine whose load drifts."""
    torch.set_num_threads(1)
    cpu = torch.device("cpu")
    setups = [([seeds[0]], "none"), ([seeds[0]], tta), (seeds, "none"), (seeds, tta)]
    models = [load_members(paths, t, cpu, image_size=None, threshold=None) for paths, t in setups]
    size = models[0].trained.data.image_size
    images = torch.randn(batch, 3, size, size)
    times: list[list[float]] = [[] for _ in models]
    with torch.no_grad():
        for _ in range(rounds):
            for member, out in zip(models, times):
                started = time.perf_counter()
                member.model(images)
                out.append(1000 * (time.perf_counter() - started) / batch)
    return [float(np.median(t)) for t in times]


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
        f"single + TTA {args.tta}": np.stack([per_image(r, names) for r in tta]),
        f"{len(seeds)}-seed ensemble": np.tile(per_image(ensemble, names), (len(seeds), 1)),
        f"{len(seeds)}-seed ensemble + TTA {args.tta}": np.tile(per_image(ensemble_tta, names), (len(seeds), 1)),
    }
    comparisons = [Comparison(name, a.mean(1), base.mean(1), a, base) for name, a in settings.items()]
    verdicts = judge(comparisons, args.margin)
    ms = inference_ms(seeds, args.tta)
    lines = [
        f"Study `{args.study}`, arm `{args.arm}`: {len(seeds)} seeds, {len(names)} test images; differences are "
        "against the single model of the same seed, paired by seed and image (CI over seeds: the study's rule; "
        "CI over seeds then images: hierarchical bootstrap). Inference: ms per image of the forward passes, batch 16, "
        "one CPU thread, medians of 5 interleaved rounds.",
        "",
        "| setting | test Dice (mean over seeds) | difference | 95% CI seeds | 95% CI seeds, images | verdict | "
        "inference ms / image |",
        "|---|---|---|---|---|---|---|",
        f"| single model | {base.mean():.4f} | | | | | {ms[0]:.1f} |",
    ]
    for (name, a), v, run_ms in zip(settings.items(), verdicts, ms[1:]):
        hier = v.ci_hierarchical or (float("nan"), float("nan"))
        lines.append(f"| {name} | {a.mean():.4f} | {v.mean_diff:+.4f} | [{v.ci_seeds[0]:+.4f}, {v.ci_seeds[1]:+.4f}] "
                     f"| [{hier[0]:+.4f}, {hier[1]:+.4f}] | {v.kind} | {run_ms:.1f} |")  # fmt: skip
    text = "\n".join(lines) + "\n"
    (args.out / "tta_ensemble.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
