"""Where and how the math runs: device, precision, seeding, data loaders."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from seg.errors import ConfigError


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


def seed_worker(worker_id: int) -> None:
    """DataLoader worker init: seed numpy, python and the dataset's augmentation from torch's seed.

    torch gives each worker `base_seed + worker_id`, and base_seed comes from the loader's generator,
    which the trainer reseeds every epoch: augmentation is a function of (seed, epoch, worker).
    """
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)
    info = torch.utils.data.get_worker_info()
    reseed = getattr(info.dataset, "reseed", None) if info is not None else None
    if reseed is not None:
        reseed(seed)


@contextlib.contextmanager
def sigint_deferred() -> Iterator[None]:
    """Hold Ctrl-C (SIGINT) until the block ends, then raise KeyboardInterrupt.

    For bookkeeping that must not be cut in half, such as "epoch k is done" and "last.pt holds
    epoch k". Outside the main thread (where signals cannot be handled) it does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if received:
        raise KeyboardInterrupt


def make_loader(
    dataset: Dataset,
    batch_size: int,
    num_workers: int,
    shuffle: bool,
    pin_memory: bool,
    sampler: Sampler | None = None,
) -> DataLoader:
    """A DataLoader whose randomness is reproducible (see `seed_worker`, `reseed_loader`)."""
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle and sampler is None,
        sampler=sampler,
        num_workers=num_workers,
        pin_memory=pin_memory,
        drop_last=False,
        worker_init_fn=seed_worker,
        generator=torch.Generator(),
        persistent_workers=False,
    )


def reseed_loader(loader: DataLoader, seed: int, epoch: int) -> None:
    """Make epoch `epoch`'s shuffling and augmentation depend only on (seed, epoch).

    So a resumed run sees the same batches as an uninterrupted one.
    """
    epoch_seed = seed * 100_003 + epoch
    loader.generator.manual_seed(epoch_seed)
    if hasattr(loader.sampler, "set_epoch"):
        loader.sampler.set_epoch(epoch)
    reseed = getattr(loader.dataset, "reseed", None)
    if loader.num_workers == 0 and reseed is not None:
        reseed(epoch_seed)
