"""The parts of one training run the engine works on, built by seg.build.build_training from a checked config."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from seg.engine.distributed import DistContext
from seg.engine.optim import LRSchedule
from seg.engine.runtime import Precision, Seeds

if TYPE_CHECKING:
    from seg.schema import TrainConfig


@dataclass
class Training:
    """Everything the loop needs, built from one config."""

    cfg: TrainConfig
    ctx: DistContext
    device: torch.device
    precision: Precision
    datasets: dict[str, Dataset]
    train_loader: DataLoader
    val_loader: DataLoader
    model: nn.Module  # the bare model (what checkpoints hold)
    net: nn.Module  # what the loop calls: the model, or its DistributedDataParallel wrapper
    loss_fn: nn.Module
    optimizer: torch.optim.Optimizer
    schedule: LRSchedule
    scaler: torch.amp.GradScaler
    steps_per_epoch: int
    seeds: Seeds  # of initialisation, data order and augmentation (cfg.seed, or cfg.seeds.<source>)
