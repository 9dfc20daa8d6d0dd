"""`make bench`: how fast this machine runs the suite, and where the time of a sweep job goes.

Sections (all by default; `--sections` picks some):
  ceiling   fp32 matmul GFLOP/s (on CUDA also tf32 and bf16): the ceiling for model FLOP utilisation
  model     training images/s, GFLOP/s and MFU of unet (base 64) and resnet34_unet, contiguous vs
            channels_last (on CUDA also bf16 autocast)
  loader    train-loader images/s on the real sample: resized cache vs decoding each JPEG, 0 and 2 workers
  epoch     seconds per epoch of `fit` on the real sample at 128 px (small UNet), split into data wait and
            compute, and the test pass a job ends with
  overhead  seconds of a sweep job besides training: process start, imports, config, data, W&B offline

Everything is built as `python -m seg.train` builds it: the config tree composed and checked (seg.schema),
`seg.build.build_training`, the loop's `train_one_epoch` / `fit` and `seg.engine.evaluation.evaluate_dataset`.

Writes <out>/bench.json (every figure as median, min, max and the repeats) and <out>/bench.md (tables).
The device is CUDA when one is visible, else the CPU. A full run takes ~10 minutes on 2 CPU cores,
`--quick` ~3 minutes (128 px, one repeat, short timings; for checking, not for reporting). On CPU the
process keeps freed memory for reuse as the trainer does (build_training applies `trainer.reuse_host_memory`).

    python scripts/bench.py [--quick] [--repeats N] [--out outputs/bench] [--sections ceiling,model]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from benchlib.common import REAL_SAMPLE, CpuShare, Suite, conditions, suite_config
from benchlib.compute import Matmul, ceiling_precisions, measure_ceiling, measure_model, model_cases
from benchlib.data import folder_sample, measure_epoch, measure_loader
from benchlib.overhead import measure_overhead
from benchlib.report import render, targets

from seg.engine.runtime import resolve_device

SECTIONS = ("ceiling", "model", "loader", "epoch", "overhead")


@dataclass(frozen=True)
class Plan:
    """What the sections measure and for how long (a full run, or --quick)."""

    suite: Suite  # the device, and where data, cache and jobs go
    sample: Path  # the Oxford-layout data of the loader and epoch sections
    quick: bool
    repeats: int
    models: list[str]
    sizes: list[int]  # image sides of the model and loader sections
    batch: int  # training batch at 128 px
    matmul_n: int
    ceiling_seconds: float  # per ceiling repeat
    model_seconds: float  # per model repeat (at least one step)
    pair_seconds: float  # matmul measured after each model repeat
    epoch_sources: tuple[bool, ...]  # epoch section: from the cache (True) and/or decoding (False)
    epoch_limit: int | None  # batches per pass in the epoch section (None: all)

    @property
    def device(self) -> torch.device:
        return self.suite.device


def _list(kind: Callable[[str], Any]) -> Callable[[str], list[Any]]:
    return lambda text: [kind(v) for v in text.split(",") if v]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--quick", action="store_true",
                        help="128 px only, 1 repeat, short timings, 2-batch epochs: checks, not figures")
    parser.add_argument("--repeats", type=int, help="repeats per figure (default 3, --quick 1)")
    parser.add_argument("--out", type=Path, default=Path("outputs/bench"),
                        help="where bench.json/.md go (and the bench's data cache and sweep jobs)")
    parser.add_argument("--sample", type=Path, default=REAL_SAMPLE,
                        help="Oxford-IIIT Pet layout data of the loader and epoch sections (default: the real sample)")
    parser.add_argument("--sections", type=_list(str), default=list(SECTIONS), help=",".join(SECTIONS))
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's, i.e. the cores)")
    parser.add_argument("--models", type=_list(str), default=["unet", "resnet34_unet"], help="conf/model options")
    parser.add_argument("--sizes", type=_list(int), help="image sides of model and loader (default 128,256)")
    parser.add_argument("--batch", type=int,
                        help="training batch at 128 px, scaled to keep the pixels at other sizes "
                             "(default: data.batch_size of conf/, 32; CUDA 64)")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.sections) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown section(s) {unknown}; choose from {', '.join(SECTIONS)}")
    return args


def make_plan(args: argparse.Namespace) -> Plan:
    device = resolve_device(args.device)
    cuda, quick = device.type == "cuda", args.quick
    return Plan(
        suite=Suite(args.out.resolve(), device), sample=args.sample.resolve(), quick=quick,
        repeats=args.repeats or (1 if quick else 3), models=args.models,
        sizes=args.sizes or ([128] if quick else [128, 256]),
        batch=args.batch or (64 if cuda else suite_config().data.batch_size),
        matmul_n=8192 if cuda else (2048 if quick else 4096), ceiling_seconds=0.3 if quick else 1.0,
        model_seconds=0.0 if quick else 2.0, pair_seconds=0.2 if quick else 0.5,
        epoch_sources=(True,) if quick else (True, False), epoch_limit=2 if quick else None,
    )


def _ceiling(plan: Plan) -> list[dict[str, Any]]:
    return measure_ceiling(plan.device, plan.matmul_n, plan.repeats, plan.ceiling_seconds)


def _model(plan: Plan) -> list[dict[str, Any]]:
    probes = {p: Matmul(plan.device, p, plan.matmul_n) for p in ceiling_precisions(plan.device)}
    return [measure_model(case, plan.suite, plan.repeats, plan.model_seconds, probes[case.ceiling(plan.device)],
                          plan.pair_seconds)
            for case in model_cases(plan.device, plan.models, plan.sizes, plan.batch)]


def _loader(plan: Plan) -> list[dict[str, Any]]:
    folder = folder_sample(plan.sample, plan.suite.out)
    return [row for size in plan.sizes for cached in (True, False, "folder")
            for row in measure_loader(plan.suite, plan.sample, size, bool(cached), [0, 2], plan.repeats,
                                      folder if cached == "folder" else None)]  # fmt: skip


def _epoch(plan: Plan) -> list[dict[str, Any]]:
    workers = plan.suite.config().data.num_workers  # the default, 2
    return [measure_epoch(plan.suite, plan.sample, cached, workers, plan.repeats, plan.epoch_limit)
            for cached in plan.epoch_sources]


def _overhead(plan: Plan) -> list[dict[str, Any]]:
    return measure_overhead(plan.suite.out / "overhead", plan.repeats)


MEASURE: dict[str, Callable[[Plan], list[dict[str, Any]]]] = {
    "ceiling": _ceiling, "model": _model, "loader": _loader, "epoch": _epoch, "overhead": _overhead,
}


def run(plan: Plan, sections: list[str]) -> dict[str, Any]:
    """Measure `sections` in order, printing each row as it comes; the results with the targets."""
    needs_sample = {"loader", "epoch"} & set(sections)
    if needs_sample and not (plan.sample / "annotations" / "trainval.txt").is_file():
        sys.exit(f"error: sections {sorted(needs_sample)} need Oxford-IIIT Pet data at {plan.sample} "
                 "(annotations/trainval.txt missing); pass --sample DIR or leave those sections out with --sections")
    meta = {**conditions(plan.device), "quick": plan.quick, "repeats": plan.repeats, "sections": sections,
            "sample": str(plan.sample) if needs_sample else None, "other_cpu_share": {}, "section_seconds": {},
            "reuse_host_memory": plan.device.type == "cpu" and plan.suite.config().trainer.reuse_host_memory}
    results: dict[str, Any] = {"meta": meta}
    for section in sections:
        share, start = CpuShare(), time.perf_counter()
        print(f"== {section}", flush=True)
        results[section] = MEASURE[section](plan)
        for row in results[section]:
            print("  " + json.dumps({k: v["median"] if isinstance(v, dict) else v for k, v in row.items()}),
                  flush=True)
        meta["other_cpu_share"][section] = share.other()
        meta["section_seconds"][section] = round(time.perf_counter() - start, 1)
    results["targets"] = targets(results)
    return results


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.threads:
        os.environ["OMP_NUM_THREADS"] = str(args.threads)  # for the jobs of the overhead section
        torch.set_num_threads(args.threads)
    results = run(make_plan(args), args.sections)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench.json").write_text(json.dumps(results, indent=1) + "\n")
    (args.out / "bench.md").write_text(render(results))
    print(render(results))
    print(f"wrote {args.out / 'bench.json'} and {args.out / 'bench.md'}")


if __name__ == "__main__":
    main()
