"""torch.distributed helpers: one process per device under `torchrun`, single process otherwise."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.utils.data import Dataset, Sampler

from seg.metrics import SegmentationMeter


@dataclass(frozen=True)
class DistContext:
    """Rank layout of this process; `world_size == 1` when not distributed."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(strategy: str, device: torch.device) -> tuple[DistContext, torch.device]:
    """Join the process group for `strategy=ddp` (nccl on CUDA, gloo on CPU).

    Returns this process's ranks and its device (`cuda:<local rank>` on CUDA). Ranks other than 0
    log warnings only, so the terminal shows one copy of the progress.
    """
    if strategy != "ddp":
        return DistContext(), device
    if "RANK" not in os.environ:
        raise RuntimeError(
            "trainer.strategy=ddp needs torchrun: "
            "torchrun --nproc_per_node=N -m seg.train trainer.strategy=ddp ..."
        )
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    ctx = DistContext(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))
    if device.type == "cuda":
        device = torch.device("cuda", ctx.local_rank)
        torch.cuda.set_device(device)
    if not ctx.is_main:
        logging.getLogger().setLevel(logging.WARNING)
    return ctx, device


def shutdown_distributed() -> None:
    """Leave the process group, if this process joined one."""
    if dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum(tensor: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """Sum of `tensor` over ranks (the tensor itself when not distributed)."""
    if ctx.enabled:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def reduce_meter(meter: SegmentationMeter, ctx: DistContext) -> dict[str, float]:
    """Metrics of `meter` over all ranks: its sums are all-reduced before the ratios are taken."""
    if ctx.enabled:
        meter.load_state(all_reduce_sum(meter.state(), ctx))
    return meter.compute()


def gather_objects(obj: object, ctx: DistContext) -> list[object]:
    """`obj` of every rank, in rank order (`[obj]` when not distributed)."""
    if not ctx.enabled:
        return [obj]
    gathered: list[object] = [None] * ctx.world_size
    dist.all_gather_object(gathered, obj)
    return gathered


def broadcast_object(obj: object, ctx: DistContext) -> object:
    """Rank 0's `obj` on every rank."""
    if not ctx.enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


class ShardSampler(Sampler[int]):
    """Every `world_size`-th index from `rank`, without the padding of DistributedSampler.

    For evaluation: each sample is counted exactly once over all ranks, so all-reduced metrics equal
    those of one process.
    """

    def __init__(self, dataset: Dataset, ctx: DistContext):
        self.indices = range(ctx.rank, len(dataset), ctx.world_size)

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)
