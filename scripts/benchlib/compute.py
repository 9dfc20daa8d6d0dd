"""The matmul ceiling and the training-step throughput of the suite's models.

Model FLOP utilisation (MFU) = achieved GFLOP/s of a training step / matmul GFLOP/s. The FLOPs of a step
are counted by `torch.utils.flop_counter.FlopCounterMode` (convolutions and matmuls of forward and
backward; elementwise ops, BatchNorm and the optimizer count 0 but take time). On a shared machine the
CPU available to us changes from second to second, so every timed repeat of a step is paired with a
short matmul measurement right after it and MFU is computed per pair; the ceiling section gives the
machine's matmul rate on its own.

Where the rest of the step goes (CPU): one step under `torch.profiler` gives the share of the step spent in
convolution ops (forward and backward), so conv MFU = MFU / conv share is how close the convolution
kernels themselves come to the matmul ceiling; and the minor page faults per step show whether the step
re-faults its activations (see `seg.engine.runtime.reuse_host_memory`).
"""

from __future__ import annotations

import contextlib
import math
import resource
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch.profiler import ProfilerActivity, profile
from torch.utils.flop_counter import FlopCounterMode

from benchlib.common import Stat, TrainingParts, seconds, suite_config
from seg.engine.loop import batches


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


def measure_model(case: ModelCase, device: torch.device, repeats: int, min_seconds: float,
                  ceiling: Matmul, pair_seconds: float) -> dict[str, Any]:
    """Images/s, GFLOP/s and MFU of the suite's training step (`train_one_epoch`) on random batches.

    The model, loss and optimizer are the suite's defaults for `model=<case.model>`; the batch goes
    through `batches` (device copy and memory format) like the trainer's.
    """
    parts = TrainingParts.build(suite_config([f"model={case.model}"]), device, case.channels_last, case.precision)
    images = torch.randn(case.batch, 3, case.size, case.size)
    masks = (torch.rand(case.batch, 1, case.size, case.size) > 0.5).float()

    def steps(n: int) -> None:
        parts.train(batches([(images, masks)] * n, device, case.channels_last), device)

    with FlopCounterMode(display=False) as counter:  # also the first warm-up step
        steps(1)
    flops = counter.get_total_flops()
    n_steps = max(1, math.ceil(min_seconds / seconds(lambda: steps(1), device)))
    rates, mfus = [], []
    faults_before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(repeats):
        rate = n_steps / seconds(lambda: steps(n_steps), device)  # steps per second
        rates.append(rate)
        mfus.append(rate * flops / 1e9 / ceiling.gflops(pair_seconds))
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults_before  # of the pairs' matmuls too
    conv_share = convolution_share(lambda: steps(1)) if device.type == "cpu" else None
    return {
        "model": case.model, "size": case.size, "batch": case.batch,
        "layout": "channels_last" if case.channels_last else "contiguous",
        "precision": "bf16" if case.precision == "bf16" else "fp32", "ceiling": ceiling.precision,
        "steps_per_repeat": n_steps, "gflop_per_image": flops / case.batch / 1e9,
        "images_per_s": Stat.of([r * case.batch for r in rates]).to_json(),
        "gflops": Stat.of([r * flops / 1e9 for r in rates]).to_json(),
        "mfu": Stat.of(mfus).to_json(),
        "page_fault_mb_per_step": faults * resource.getpagesize() / (repeats * n_steps) / 2**20,
        "conv_share": conv_share,
        "conv_mfu": None if conv_share is None else Stat.of([m / conv_share for m in mfus]).to_json(),
    }


def convolution_share(step: Callable[[], None]) -> float:
    """Fraction of one CPU step's op time spent in convolution ops (forward and backward), by torch.profiler."""
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    return sum(e.self_cpu_time_total for e in events if "convolution" in e.key) / total
