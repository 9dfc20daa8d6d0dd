"""`make bench`: how fast this machine runs the suite, and where the time of a sweep job goes.

Sections (all by default; `--sections` picks some):
  ceiling   fp32 matmul GFLOP/s (on CUDA also tf32 and bf16): the ceiling for model FLOP utilisation
  model     training images/s, GFLOP/s and MFU of unet (base 64) and resnet34_unet, contiguous vs
            channels_last (on CUDA also bf16 autocast)
  loader    train-loader images/s on the real sample: resized cache vs decoding each JPEG, 0 and 2 workers
  epoch     seconds per epoch on the real sample at 128 px (small UNet), split into data wait and compute
  overhead  seconds of a sweep job besides training: process start, imports, config, data, W&B offline

Writes <out>/bench.json (every figure as median, min, max and the repeats) and <out>/bench.md (tables).
The device is CUDA when one is visible, else the CPU. A full run takes ~10 minutes on 2 CPU cores,
`--quick` ~1-2 minutes (fewer sizes, shorter timings, two repeats; for checking, not for reporting).

    python scripts/bench.py [--quick] [--repeats N] [--out outputs/bench] [--sections ceiling,model]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from benchlib.common import REAL_SAMPLE, CpuShare, conditions
from benchlib.compute import Matmul, ceiling_precisions, measure_ceiling, measure_model, model_cases
from benchlib.data import measure_epoch, measure_loader
from benchlib.overhead import measure_overhead
from benchlib.report import render, targets
from seg.engine.runtime import resolve_device

SECTIONS = ("ceiling", "model", "loader", "epoch", "overhead")


def _list(kind: Callable[[str], Any]) -> Callable[[str], list[Any]]:
    return lambda text: [kind(v) for v in text.split(",") if v]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--quick", action="store_true", help="short timings, 128 px only, 2 repeats")
    parser.add_argument("--repeats", type=int, help="repeats per figure (default 3, --quick 2)")
    parser.add_argument("--out", type=Path, default=Path("outputs/bench"), help="where bench.json/.md go")
    parser.add_argument("--sections", type=_list(str), default=list(SECTIONS), help=",".join(SECTIONS))
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    parser.add_argument("--models", type=_list(str), default=["unet", "resnet34_unet"], help="conf/model options")
    parser.add_argument("--sizes", type=_list(int), help="image sides of model and loader (default 128,256)")
    parser.add_argument("--batch", type=int,
                        help="training batch at 128 px, scaled to keep the pixels at other sizes (CPU 8, CUDA 64)")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.sections) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown section(s) {unknown}; choose from {', '.join(SECTIONS)}")
    args.repeats = args.repeats or (2 if args.quick else 3)
    args.sizes = args.sizes or ([128] if args.quick else [128, 256])
    return args


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Measure the chosen sections in order, printing each figure as it comes."""
    device = resolve_device(args.device)
    cuda = device.type == "cuda"
    quick, repeats = args.quick, args.repeats
    matmul_n = 8192 if cuda else (2048 if quick else 4096)
    cache_dir = args.out / "cache"
    results: dict[str, Any] = {"meta": {**conditions(device), "quick": quick, "repeats": repeats,
                                        "sections": args.sections, "other_cpu_share": {}}}
    needs_sample = {"loader", "epoch"} & set(args.sections)
    if needs_sample and not (REAL_SAMPLE / "annotations" / "trainval.txt").is_file():
        sys.exit(f"error: sections {sorted(needs_sample)} need the real sample at {REAL_SAMPLE}")

    for section in args.sections:
        share = CpuShare()
        print(f"== {section}", flush=True)
        if section == "ceiling":
            rows = measure_ceiling(device, matmul_n, repeats, min_seconds=0.3 if quick else 1.0)
        elif section == "model":
            probes = {p: Matmul(device, p, matmul_n) for p in ceiling_precisions(device)}
            rows = []
            for case in model_cases(device, args.models, args.sizes, args.batch or (64 if cuda else 8)):
                rows.append(measure_model(case, device, repeats, min_seconds=0.0 if quick else 2.0,
                                          ceiling=probes[case.ceiling(device)],
                                          pair_seconds=0.2 if quick else 0.5))
        elif section == "loader":
            rows = [row for size in args.sizes for cached in (True, False)
                    for row in measure_loader(size, cached, [0, 2], repeats, cache_dir, device)]
        elif section == "epoch":
            rows = [measure_epoch(cached, 2, repeats, cache_dir, device, limit=3 if quick else None)
                    for cached in (True, False)]
        else:
            rows = measure_overhead(args.out / "overhead", repeats)
        for row in rows:
            print("  " + json.dumps({k: v["median"] if isinstance(v, dict) else v for k, v in row.items()}),
                  flush=True)
        results[section] = rows
        results["meta"]["other_cpu_share"][section] = share.other()
    results["targets"] = targets(results)
    return results


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    results = run(args)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench.json").write_text(json.dumps(results, indent=1) + "\n")
    (args.out / "bench.md").write_text(render(results))
    print(f"wrote {args.out / 'bench.json'} and {args.out / 'bench.md'}")
    print(render(results))


if __name__ == "__main__":
    main()
