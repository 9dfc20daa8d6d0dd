"""Statistics over repeats, device-synchronised timing, the suite's config and the run's conditions."""

from __future__ import annotations

import datetime as dt
import os
import platform
import resource
import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import DictConfig

from seg.engine.loop import train_one_epoch
from seg.engine.optim import LRSchedule, build_optimizer, build_schedule
from seg.engine.runtime import Precision, seed_everything
from seg.metrics import SegmentationMeter

REPO = Path(__file__).resolve().parents[2]
REAL_SAMPLE = (REPO / ".." / "shared" / "data" / "oxford-iiit-pet-sample").resolve()
"""The 400-image real Oxford-IIIT Pet sample, read in place (never copied into the repository)."""

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


def sync(device: torch.device) -> None:
    """Wait for the device's queued work (CUDA kernels run asynchronously; the CPU needs nothing)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def seconds(fn: Callable[[], object], device: torch.device) -> float:
    """Wall seconds of `fn()`, including the device work it queued."""
    sync(device)
    start = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - start


def suite_config(overrides: Sequence[str]) -> DictConfig:
    """The config `python -m seg.train <overrides>` would compose (conf/train.yaml), without running it."""
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        return compose(config_name="train", overrides=list(overrides))


@dataclass
class TrainingParts:
    """What `train_one_epoch` needs besides data, built from a config as `seg.train.fit` builds them."""

    model: torch.nn.Module
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    optimizer: torch.optim.Optimizer
    schedule: LRSchedule
    precision: Precision
    scaler: torch.amp.GradScaler

    @classmethod
    def build(cls, cfg: DictConfig, device: torch.device, channels_last: bool, precision: str) -> TrainingParts:
        """Seeded; the config's model, loss and optimizer; a constant learning rate; `precision` autocast."""
        seed_everything(cfg.seed, cfg.trainer.deterministic)
        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        model = instantiate(cfg.model).to(device, memory_format=memory_format)
        optimizer = build_optimizer(model.parameters(), **cfg.optimizer)
        resolved = Precision.resolve(precision, device)
        return cls(model, instantiate(cfg.loss), optimizer, build_schedule(optimizer, "none", 1, 1), resolved,
                   resolved.grad_scaler())

    def train(self, data: Iterable, device: torch.device, epoch: int = 1) -> None:
        """One `train_one_epoch` over `data`."""
        train_one_epoch(self.model, data, self.loss_fn, self.optimizer, self.schedule, self.scaler, self.precision,
                        SegmentationMeter(device=device), epoch)


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
