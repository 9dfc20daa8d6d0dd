"""From a checked config (seg.schema) to the objects of a training run: the one place that reads config for them.

`build_training` is used by seg.train and by `make bench`. Objects come from the registries of seg.schema (MODELS,
LOSSES, OPTIMIZERS, SCHEDULES, AUGMENTATIONS: seg/registry.py) by name, never from a `_target_`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import nn
from torch.utils.data import DistributedSampler

from seg import models
from seg.data import build_datasets, layout_kwargs
from seg.engine.distributed import ShardSampler, init_distributed
from seg.engine.parts import Training
from seg.engine.runtime import Precision, Seeds, make_loader, resolve_device, reuse_host_memory, seed_everything
from seg.registry import option_args
from seg.schema import LOSSES, OPTIMIZERS, SCHEDULES, TrainConfig


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


def build_training(cfg: TrainConfig) -> Training:
    """Device, precision, seeds, data, model, loss, optimizer and schedule of the run `cfg` describes."""
    trainer = cfg.trainer
    ctx, device = init_distributed(trainer.strategy, resolve_device(trainer.device))
    precision = Precision.resolve(trainer.precision, device)
    seeds = Seeds.of(cfg.seed, **dataclasses.asdict(cfg.seeds))
    seed_everything(seeds.init, trainer.deterministic)
    if device.type == "cpu" and trainer.reuse_host_memory:
        reuse_host_memory()
    models.prepare_weights(cfg.model.name, option_args(cfg.model))  # pretrained files fetched before any data work
    datasets = build_datasets(**data_kwargs(cfg))
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

    model = models.build_model(cfg.model.name, option_args(cfg.model))
    if ctx.enabled and trainer.sync_batchnorm:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    memory_format = torch.channels_last if trainer.channels_last else torch.contiguous_format
    model = model.to(device, memory_format=memory_format)
    net = model
    if ctx.enabled:
        net = nn.parallel.DistributedDataParallel(model, device_ids=[ctx.local_rank] if device.type == "cuda" else None)
    optimizer = OPTIMIZERS.build(cfg.optimizer, model.parameters())
    steps = min(len(train_loader), trainer.limit_train_batches or len(train_loader))
    schedule = SCHEDULES.build(cfg.scheduler, optimizer, trainer.epochs, steps)
    return Training(
        cfg, ctx, device, precision, datasets, train_loader, val_loader, model, net, LOSSES.build(cfg.loss),
        optimizer, schedule, precision.grad_scaler(), steps, seeds,
    )  # fmt: skip
