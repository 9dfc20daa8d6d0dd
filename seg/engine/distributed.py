"""torch.distributed helpers: one process per device under `torchrun`, single process otherwise."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.utils.data import Dataset, Sampler


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


def init_distributed(strategy: str, device_type: str) -> DistContext:
    """Join the process group for `strategy=ddp` (nccl on CUDA, gloo on CPU)."""
    if strategy != "ddp":
        return DistContext()
    if "RANK" not in os.environ:
        raise RuntimeError(
            "trainer.strategy=ddp needs torchrun: "
            "torchrun --nproc_per_node=N -m seg.train trainer.strategy=ddp ..."
        )
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device_type == "cuda" else "gloo")
    ctx = DistContext(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))
    if device_type == "cuda":
        torch.cuda.set_device(ctx.local_rank)
    return ctx


def all_reduce_sum(tensor: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """Sum of `tensor` over ranks (the tensor itself when not distributed)."""
    if ctx.enabled:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


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
