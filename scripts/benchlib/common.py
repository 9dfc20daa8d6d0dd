"""Statistics over repeats, device-synchronised timing, the suite's config and training, the run's conditions."""

from __future__ import annotations

import datetime as dt
import os
import platform
import resource
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from seg.build import build_training
from seg.config import compose, typed_config
from seg.engine.parts import Training
from seg.schema import TrainConfig

REPO = Path(__file__).resolve().parents[2]
REAL_SAMPLE = (REPO / ".." / "shared" / "data" / "oxford-iiit-pet-sample").resolve()
"""The 400-image real Oxford-IIIT Pet sample, read in place (never copied into the repository)."""

SMALL_MODEL = ("model=unet", "model.base_channels=16")
"""The fixed small model of the loader and epoch sections (UNet 16-32-64-128-256, ~1.9M parameters)."""

THREAD_ENV = ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "MKL_NUM_THREADS", "KMP_BLOCKTIME")
"""Environment variables that change how the CPU kernels use their threads (recorded with the results)."""


@dataclass(frozen=True)
class Stat:
    """Median, min and max of repeated measurements of one figure."""

    values: tuple[float, ...]

    @classmethod
    def of(cls, values: Sequence[float]) -> Stat:
        if not values:
            raise ValueError("a Stat needs at least one value")
        return cls(tuple(float(v) for v in values))

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    def to_json(self) -> dict[str, Any]:
        return {"median": self.median, "min": min(self.values), "max": max(self.values),
                "n": len(self.values), "values": list(self.values)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Stat:
        return cls(tuple(data["values"]))

    def text(self, scale: float = 1.0, unit: str = "") -> str:
        """'median (min–max)' of the values times `scale`, about three significant digits each."""
        median, low, high = (v * scale for v in (self.median, min(self.values), max(self.values)))
        if len(self.values) == 1:
            return f"{num(median)}{unit}"
        return f"{num(median)}{unit} ({num(low)}–{num(high)})"


def num(x: float) -> str:
    """A number with about three significant digits and no exponent."""
    if abs(x) >= 100:
        return f"{x:.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def seconds(fn: Callable[[], object], device: torch.device) -> float:
    """Wall seconds of `fn()`, including the device work it queued (CUDA kernels run asynchronously)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def suite_config(*overrides: str) -> TrainConfig:
    """The checked config `python -m seg.train <overrides>` would run (conf/train.yaml + seg.schema), not run."""
    return typed_config(compose("train", overrides))


@dataclass(frozen=True)
class Suite:
    """The suite as `python -m seg.train` builds it, on the bench's device, with its data and cache under `out`."""

    out: Path
    device: torch.device

    def config(self, *overrides: str) -> TrainConfig:
        """The checked config of `overrides` (W&B and progress bars off: they cannot change a figure)."""
        return suite_config(f"paths.data_dir={self.out / 'data'}", f"paths.cache_dir={self.out / 'cache'}",
                            f"trainer.device={self.device}", "trainer.progress=false", "logger=none", *overrides)

    def training(self, *overrides: str) -> Training:
        """`seg.build.build_training` of that config: data, loaders, model, loss, optimizer, schedule, precision."""
        return build_training(self.config(*overrides))


class CpuShare:
    """How busy the machine was with other processes while we measured (Linux /proc/stat).

    other = (CPU time of all processes - this process and its reaped children) / (wall time x CPUs).
    On a quiet machine it is ~0; 0.5 on 2 cores means one whole core went to someone else.
    """

    def __init__(self) -> None:
        self.start = self._snapshot()

    @staticmethod
    def _snapshot() -> tuple[float, float, float] | None:
        try:
            fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
        except OSError:
            return None
        ticks = os.sysconf("SC_CLK_TCK")
        busy = sum(int(v) for i, v in enumerate(fields[:8]) if i not in (3, 4)) / ticks  # not idle, iowait
        own = sum(resource.getrusage(who).ru_utime + resource.getrusage(who).ru_stime
                  for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
        return time.monotonic(), busy, own

    def other(self) -> float | None:
        end = self._snapshot()
        if self.start is None or end is None:
            return None
        wall = (end[0] - self.start[0]) * (os.cpu_count() or 1)
        return max(0.0, ((end[1] - self.start[1]) - (end[2] - self.start[2])) / max(wall, 1e-9))


def conditions(device: torch.device) -> dict[str, Any]:
    """Machine, software and settings the figures depend on."""
    info: dict[str, Any] = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "host": platform.node(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "device": str(device),
        "mkldnn": torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "load_average_start": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "env": {k: os.environ[k] for k in THREAD_ENV if k in os.environ},
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
        info["cudnn_conv_tf32"] = torch.backends.cudnn.allow_tf32
    return info


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
