"""From a checked config (seg.schema) to the objects of a training run: the one place that reads config for them.

`build_training` is used by seg.train and by `make bench`; `build_model` and `build_loss` by seg.evaluate and
seg.predict too. Objects come from registries (seg.models.MODELS, seg.losses.LOSSES, the augmentation presets,
the optimizers and schedules of seg.engine.optim) by name, never from a `_target_`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from seg import models
from seg.data import build_datasets, layout_kwargs
from seg.engine.distributed import DistContext, ShardSampler, init_distributed
from seg.engine.optim import LRSchedule, build_optimizer, build_schedule
from seg.engine.runtime import Precision, Seeds, make_loader, resolve_device, reuse_host_memory, seed_everything
from seg.errors import SegError
from seg.losses import build_loss as _build_loss
from seg.schema import TrainConfig


def knobs(node: Any) -> dict[str, Any]:
    """A group node's values other than its `name`, as plain keyword arguments."""
    return {k: v for k, v in dataclasses.asdict(node).items() if k != "name"}


def build_model(model_name: str, model_args: dict[str, Any]) -> nn.Module:
    """The registered model `model_name` with `model_args` (checked against the schema before)."""
    return models.build_model(model_name, **model_args)


def build_loss(loss_cfg: Any) -> nn.Module:
    return _build_loss(loss_cfg.name, **knobs(loss_cfg))


def data_kwargs(cfg: TrainConfig, splits: tuple[str, ...] = ("train", "val", "test")) -> dict[str, Any]:
    """The keyword arguments of `seg.data.build_datasets` from a checked config (plain values)."""
    data = cfg.data
    return {
        "root": data.root,
        "image_size": data.image_size,
        "augmentation": dataclasses.asdict(cfg.augmentation),
        "uncertain": data.uncertain,
        "val_split": data.val_split,
        "limit": data.limit,
        "on_bad_sample": data.on_bad_sample,
        "download": data.download,
        "cache_dir": cfg.paths.cache_dir if data.cache else None,
        "seed": cfg.seed,
        "synthetic": None if data.synthetic is None else dataclasses.asdict(data.synthetic),
        "splits": splits,
        **layout_kwargs(data),
    }


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

    @property
    def memory_format(self) -> torch.memory_format:
        return torch.channels_last if self.cfg.trainer.channels_last else torch.contiguous_format


def build_training(cfg: TrainConfig) -> Training:
    """Device, precision, seeds, data, model, loss, optimizer and schedule of the run `cfg` describes."""
    trainer = cfg.trainer
    ctx, device = init_distributed(trainer.strategy, resolve_device(trainer.device))
    precision = Precision.resolve(trainer.precision, device)
    seeds = Seeds.of(cfg.seed, **dataclasses.asdict(cfg.seeds))
    seed_everything(seeds.init, trainer.deterministic)
    if device.type == "cpu" and trainer.reuse_host_memory:
        reuse_host_memory()
    datasets = build_datasets(**data_kwargs(cfg))
    for split in ("train", "val"):
        if len(datasets[split]) == 0:
            raise SegError(f"empty split in {cfg.data.root}: {split} has no images; check the split lists")
    pin = device.type == "cuda"
    train_sampler = (
        DistributedSampler(datasets["train"], ctx.world_size, ctx.rank, shuffle=True, seed=seeds.order)
        if ctx.enabled
        else None
    )
    val_sampler = ShardSampler(datasets["val"], ctx) if ctx.enabled else None
    data = cfg.data
    train_loader = make_loader(datasets["train"], data.batch_size, data.num_workers, True, pin, train_sampler)
    val_loader = make_loader(datasets["val"], data.batch_size, data.num_workers, False, pin, val_sampler)

    model = build_model(cfg.model.name, knobs(cfg.model))
    if ctx.enabled and trainer.sync_batchnorm:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    memory_format = torch.channels_last if trainer.channels_last else torch.contiguous_format
    model = model.to(device, memory_format=memory_format)
    net = model
    if ctx.enabled:
        net = nn.parallel.DistributedDataParallel(model, device_ids=[ctx.local_rank] if device.type == "cuda" else None)
    optimizer = build_optimizer(model.parameters(), cfg.optimizer.name, **knobs(cfg.optimizer))
    steps = min(len(train_loader), trainer.limit_train_batches or len(train_loader))
    schedule = build_schedule(optimizer, cfg.scheduler.name, trainer.epochs, steps, **knobs(cfg.scheduler))
    return Training(
        cfg, ctx, device, precision, datasets, train_loader, val_loader, model, net, build_loss(cfg.loss),
        optimizer, schedule, precision.grad_scaler(), steps, seeds,
    )  # fmt: skip
