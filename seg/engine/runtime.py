"""Where and how the math runs: device, precision, seeding, data loaders."""

from __future__ import annotations

import contextlib
import ctypes
import functools
import gc
import os
import random
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, RandomSampler, Sampler, SequentialSampler

from seg.engine.stopping import raise_if_stopped, release_held_signals, stop_signals_held
from seg.errors import ConfigError


@functools.cache
def freeze_imports() -> None:
    """Once per process, at a command's start: move every object alive now (what the imports made: modules,
    classes, functions) out of the garbage collector's reach (``gc.freeze``). Collections during the run and the
    full one at exit then skip them: about 0.8 s of CPU less at every command's exit (torch, Hydra, Optuna and
    albumentations leave ~300,000 tracked objects). Objects made later are collected as before; only cyclic
    garbage left by the imports lives until exit."""
    gc.freeze()


def resolve_device(name: str) -> torch.device:
    """`auto` picks cuda, then mps, then cpu; an explicit device must exist."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError as e:
        raise ConfigError(
            f"invalid config: trainer.device={name!r}; allowed: auto, cpu, cuda, cuda:N, mps"
        ) from e
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            "invalid config: trainer.device=cuda but no CUDA GPU is visible; use trainer.device=auto"
        )
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(
            "invalid config: trainer.device=mps but MPS is not available; use trainer.device=auto"
        )
    return device


# glibc mallopt() parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_NEVER_TRIM = 2**31 - 1  # mallopt takes an int: bytes of free heap top kept before trimming


def reuse_host_memory() -> bool:
    """Make glibc's malloc keep freed memory in the process for reuse instead of returning it to the OS.

    A CPU training step allocates and frees gigabytes of activations. By default glibc serves blocks of
    32 MiB and more with a fresh mmap() and unmaps them on free, so every step page-faults its activations
    in again and the kernel zeroes them: 6 GB of page faults per step for the UNet at 128 px, batch 32
    (15 s per step instead of 12 s on 2 cores). With mmap and trimming off, the heap keeps the freed blocks
    (no page faults after the first steps) at the cost of a higher peak RSS (4.4 -> 5.5 GB there). It
    applies to this whole process (later jobs of a sweep run in the same process included) and to
    DataLoader workers forked after it, and cannot be undone. Returns whether libc took both settings
    (False where libc is not glibc: macOS, Windows, musl).
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library already loaded into this process
    except (OSError, AttributeError, TypeError):
        return False
    return bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, _NEVER_TRIM))


@dataclass(frozen=True)
class Precision:
    """Autocast settings for `trainer.precision` (32 | bf16 | 16) on a device."""

    device_type: str
    dtype: torch.dtype | None  # None: full fp32

    @classmethod
    def resolve(cls, precision: str | int, device: torch.device) -> Precision:
        precision = str(precision)
        if precision == "32":
            return cls(device.type, None)
        if precision == "bf16":
            return cls(device.type, torch.bfloat16)
        if precision == "16":
            if device.type != "cuda":
                raise ConfigError(
                    f"invalid config: trainer.precision=16 needs a CUDA GPU (device is {device.type}); "
                    "use trainer.precision=bf16 or 32"
                )
            return cls(device.type, torch.float16)
        raise ConfigError(f"invalid config: trainer.precision={precision!r}; allowed: 32, bf16, 16")

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)

    def grad_scaler(self) -> torch.amp.GradScaler:
        """A scaler that is active only for fp16 on CUDA (a pass-through otherwise)."""
        return torch.amp.GradScaler("cuda", enabled=self.dtype == torch.float16)


@dataclass(frozen=True)
class Seeds:
    """The seeds of a run's three random sources (`study.vary` varies one at a time, seg.study.variance):
    `init` seeds the global RNGs (weight initialisation, dropout), `order` the order of the training images each
    epoch, `augmentation` each item's augmentation draws. The split into train and val stays with the run's seed."""

    init: int
    order: int
    augmentation: int

    @classmethod
    def of(cls, seed: int, init: int | None = None, order: int | None = None, augmentation: int | None = None) -> Seeds:
        """`seed` for each source not given (`seeds.<source>: null`, the default: one seed drives all three)."""
        return cls(*(seed if s is None else s for s in (init, order, augmentation)))


def seed_everything(seed: int, deterministic: bool) -> None:
    """Seed python, numpy and torch; optionally force deterministic kernels."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
    elif torch.cuda.is_available():
        torch.backends.cudnn.benchmark = True


class SeededSampler(Sampler[tuple[int, int]]):
    """Yields (index, seed) pairs: the indices of `sampler`, each with the seed of that item's random draws.

    The seed is a function of (epoch seed, index) only, so augmentation does not depend on the number of
    workers, on which worker loads an item, or on whether the workers persist across epochs. The sampler
    runs in the main process; `set_epoch_seed` there reaches every worker with the next indices.
    """

    def __init__(self, sampler: Sampler[int]) -> None:
        self.sampler = sampler
        self.epoch_seed = 0

    def set_epoch_seed(self, epoch_seed: int) -> None:
        self.epoch_seed = epoch_seed

    def __iter__(self) -> Iterator[tuple[int, int]]:
        for index in self.sampler:
            yield index, (self.epoch_seed * 1_000_003 + index) % 2**63

    def __len__(self) -> int:
        return len(self.sampler)


def rng_state() -> dict[str, Any]:
    """RNG states of python, numpy and torch (and CUDA), as tensors and plain values (checkpoint-safe)."""
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Inverse of `rng_state`."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def make_loader(
    dataset: Dataset,
    batch_size: int,
    num_workers: int,
    shuffle: bool,
    pin_memory: bool,
    sampler: Sampler[int] | None = None,
) -> DataLoader:
    """A DataLoader whose order and augmentation depend only on (seed, epoch) (see `reseed_loader`).

    Workers persist across epochs (no start-up per epoch). `sampler` (e.g. DistributedSampler) replaces
    the default random (`shuffle`) or sequential order.
    """
    if sampler is None:
        order = torch.Generator()
        sampler = RandomSampler(dataset, generator=order) if shuffle else SequentialSampler(dataset)
    return StoppableLoader(
        dataset,
        batch_size=batch_size,
        sampler=SeededSampler(sampler),
        num_workers=num_workers,
        pin_memory=pin_memory,
        drop_last=False,
        generator=torch.Generator(),  # workers' base seed: fixed, and never drawn from the global RNG
        persistent_workers=num_workers > 0,
        worker_init_fn=bind_worker_to_run,
    )


class StoppableLoader(DataLoader):
    """A DataLoader that stops on SIGINT and SIGTERM whenever they come: its workers start with the stop signals
    held (`stop_signals_held`), and a stop signal whose exception was lost is raised again between batches."""

    def __iter__(self) -> Iterator[Any]:
        with stop_signals_held():
            batches = super().__iter__()
        return _stoppable(batches)


def _stoppable(batches: Iterator[Any]) -> Iterator[Any]:
    raise_if_stopped()
    for batch in batches:
        yield batch
        raise_if_stopped()


_PR_SET_PDEATHSIG = 1  # prctl(2)


def bind_worker_to_run(worker_id: int) -> None:
    """In each loader worker, on Linux: have the kernel kill the worker when the run's main process dies, even by
    SIGKILL or the OOM killer, so that no worker outlives its run (its SIGTERM handling stays as it was: the main
    process's exit terminates its workers with SIGTERM). The stop signals, held while the workers forked, are
    released: one that came meanwhile ends this worker (its loop takes KeyboardInterrupt as the end)."""
    release_held_signals()
    with contextlib.suppress(OSError, AttributeError, TypeError):  # not Linux: the DataLoader's own watchdog ends
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)  # the worker once its parent died
    if os.getppid() == 1:  # the main process died before the line above took effect
        os._exit(1)


def reseed_loader(loader: DataLoader, seed: int, epoch: int, augmentation_seed: int | None = None) -> None:
    """Make epoch `epoch`'s order depend only on (seed, epoch), and its augmentation only on (augmentation_seed,
    epoch) (augmentation_seed None: `seed`).

    So a resumed run sees the same batches as an uninterrupted one. Call it before iterating the epoch.
    """
    epoch_seed = seed * 100_003 + epoch
    seeded: SeededSampler = loader.sampler
    seeded.set_epoch_seed(epoch_seed if augmentation_seed is None else augmentation_seed * 100_003 + epoch)
    order = seeded.sampler
    if isinstance(order, RandomSampler):  # make_loader's, with its own generator
        order.generator.manual_seed(epoch_seed)
    if hasattr(order, "set_epoch"):  # DistributedSampler: shuffles with (its seed, epoch)
        order.set_epoch(epoch)
