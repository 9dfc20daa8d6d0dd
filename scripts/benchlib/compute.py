"""The matmul ceiling and the training-step throughput of the suite's models.

Model FLOP utilisation (MFU) = achieved GFLOP/s of a training step / matmul GFLOP/s. The FLOPs of a step
are counted by `torch.utils.flop_counter.FlopCounterMode` (convolutions and matmuls of forward and
backward; elementwise ops, BatchNorm and the optimizer count 0 but take time). On a shared machine the
CPU available to us changes from second to second, so every timed repeat of a step is paired with a
short matmul measurement right after it and MFU is computed per pair; the ceiling section gives the
machine's matmul rate on its own.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from benchlib.common import Stat, Suite, seconds
from seg.engine.loop import batches, train_one_epoch
from seg.metrics import SegmentationMeter

SYNTHETIC = ("data=synthetic", "data.synthetic.n=8", "data.num_workers=0")
"""The model section feeds random batches; build_training still builds a dataset, so it gets a tiny one."""


def ceiling_precisions(device: torch.device) -> list[str]:
    """fp32 everywhere; on CUDA also tf32 (what cuDNN uses for fp32 convs by default) and bf16."""
    return ["fp32", "tf32", "bf16"] if device.type == "cuda" else ["fp32"]


@contextlib.contextmanager
def _matmul_precision(precision: str) -> Iterator[None]:
    """fp32 matmuls as TF32 inside the block for precision `tf32` (strict fp32 otherwise)."""
    before = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("high" if precision == "tf32" else "highest")
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(before)


class Matmul:
    """A square (n x n) @ (n x n) matmul in one precision, timed repeatedly without reallocating."""

    def __init__(self, device: torch.device, precision: str, n: int) -> None:
        dtype = torch.bfloat16 if precision == "bf16" else torch.float32
        self.device, self.precision, self.n = device, precision, n
        self.a = torch.randn(n, n, device=device, dtype=dtype)
        self.b = torch.randn(n, n, device=device, dtype=dtype)
        self.out = torch.empty(n, n, device=device, dtype=dtype)

    def gflops(self, min_seconds: float) -> float:
        """GFLOP/s over as many back-to-back matmuls as fill `min_seconds` (after one warm-up call)."""
        with _matmul_precision(self.precision):
            once = seconds(self._call, self.device)
            calls = max(1, math.ceil(min_seconds / max(once, 1e-9)))
            elapsed = seconds(lambda: [self._call() for _ in range(calls)], self.device)
        return 2 * self.n**3 * calls / elapsed / 1e9

    def _call(self) -> None:
        torch.matmul(self.a, self.b, out=self.out)


def measure_ceiling(device: torch.device, n: int, repeats: int, min_seconds: float) -> list[dict[str, Any]]:
    """Matmul GFLOP/s per precision: median, min and max over `repeats`."""
    rows = []
    for precision in ceiling_precisions(device):
        probe = Matmul(device, precision, n)
        gflops = Stat.of([probe.gflops(min_seconds) for _ in range(repeats)])
        rows.append({"precision": precision, "n": n, "threads": torch.get_num_threads(),
                     "gflops": gflops.to_json()})
    return rows


@dataclass(frozen=True)
class ModelCase:
    """One training-step configuration: model (a conf/model option), image side, batch, layout, precision."""

    model: str
    size: int
    batch: int
    channels_last: bool
    precision: str  # trainer.precision: "32" or "bf16"

    def overrides(self) -> list[str]:
        """The case as `python -m seg.train` overrides."""
        return [f"model={self.model}", f"data.image_size={self.size}", f"data.batch_size={self.batch}",
                f"trainer.channels_last={str(self.channels_last).lower()}", f"trainer.precision={self.precision}"]

    def ceiling(self, device: torch.device) -> str:
        """The matmul precision this case's convolutions run in."""
        if self.precision == "bf16":
            return "bf16"
        return "tf32" if device.type == "cuda" and torch.backends.cudnn.allow_tf32 else "fp32"


def model_cases(device: torch.device, models: list[str], sizes: list[int], batch_128: int) -> list[ModelCase]:
    """Every model x size x layout (x bf16 on CUDA); the batch keeps the pixels per batch of `batch_128`
    images at 128 px, so each size does about the same work per step."""
    precisions = ["32", "bf16"] if device.type == "cuda" else ["32"]
    return [
        ModelCase(model, size, max(1, round(batch_128 * (128 / size) ** 2)), channels_last, precision)
        for model in models for size in sizes for precision in precisions for channels_last in (False, True)
    ]


def measure_model(case: ModelCase, suite: Suite, repeats: int, min_seconds: float, ceiling: Matmul,
                  pair_seconds: float) -> dict[str, Any]:
    """Images/s, GFLOP/s and MFU of the suite's training step on random batches.

    Model, loss, optimizer, schedule, precision and layout come from `seg.build.build_training` of the case's
    config (the suite's defaults otherwise), the step is `seg.engine.loop.train_one_epoch` over `batches`,
    exactly what `fit` runs.
    """
    t = suite.training(*case.overrides(), *SYNTHETIC)
    images = torch.randn(case.batch, 3, case.size, case.size)
    masks = (torch.rand(case.batch, 1, case.size, case.size) > 0.5).float()

    def steps(n: int) -> None:
        meter = SegmentationMeter(threshold=t.cfg.threshold, device=t.device)
        train_one_epoch(t.net, batches([(images, masks)] * n, t.device, case.channels_last), t.loss_fn,
                        t.optimizer, t.schedule, t.scaler, t.precision, meter, 1, t.cfg.trainer.grad_clip)

    with FlopCounterMode(display=False) as counter:  # also the first warm-up step
        steps(1)
    flops = counter.get_total_flops()
    n_steps = max(1, math.ceil(min_seconds / seconds(lambda: steps(1), t.device)))
    rates, mfus = [], []
    for _ in range(repeats):
        rate = n_steps / seconds(lambda: steps(n_steps), t.device)  # steps per second
        rates.append(rate)
        mfus.append(rate * flops / 1e9 / ceiling.gflops(pair_seconds))
    return {
        "model": case.model, "size": case.size, "batch": case.batch,
        "layout": "channels_last" if case.channels_last else "contiguous",
        "precision": "bf16" if case.precision == "bf16" else "fp32", "ceiling": ceiling.precision,
        "steps_per_repeat": n_steps, "gflop_per_image": flops / case.batch / 1e9,
        "images_per_s": Stat.of([r * case.batch for r in rates]).to_json(),
        "gflops": Stat.of([r * flops / 1e9 for r in rates]).to_json(),
        "mfu": Stat.of(mfus).to_json(),
    }
