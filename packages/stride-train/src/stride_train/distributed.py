"""Multi-process training under torchrun/srun: the process group, this rank's share of a batch, collectives."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import torch
import torch.distributed as dist
from torch import Tensor

from stride_core.errors import ConfigError, StrideError
from stride_core.progress import get_logger

T = TypeVar("T")


def choose_device(name: str, local_rank: int = 0) -> torch.device:
    """The training device: 'auto' is CUDA when visible; one GPU per local rank under torchrun."""
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("training.device is 'cuda' but no CUDA device is visible; use 'auto' or 'cpu'")
    if name == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    if local_rank >= torch.cuda.device_count():  # GPU-only branch
        raise ConfigError(
            f"LOCAL_RANK {local_rank} has no GPU: {torch.cuda.device_count()} visible on this node; start at "
            f"most that many processes per node (torchrun --nproc_per_node)"
        )
    return torch.device("cuda", local_rank)


@dataclass(frozen=True)
class World:
    """This process's place in the job; a plain single-process run is rank 0 of a world of 1."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    """The training device; collectives exchange tensors there (gloo on the CPU, NCCL on CUDA)."""

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def share(self, global_size: int) -> slice:
        """This rank's contiguous part of a global batch whose size divides by the world size."""
        per_rank = global_size // self.world_size
        return slice(self.rank * per_rank, (self.rank + 1) * per_rank)

    def sum(self, tensor: Tensor) -> Tensor:
        """The elementwise sum over ranks (a new tensor; the argument is left alone)."""
        if not self.is_distributed:
            return tensor
        total = tensor.detach().to(self.device, copy=True)
        dist.all_reduce(total)
        return total

    def max(self, tensor: Tensor) -> Tensor:
        if not self.is_distributed:
            return tensor
        largest = tensor.detach().to(self.device, copy=True)
        dist.all_reduce(largest, op=dist.ReduceOp.MAX)
        return largest

    def gather(self, tensor: Tensor) -> Tensor:
        """Every rank's tensor (all of one shape) concatenated along dim 0 in rank order."""
        if not self.is_distributed:
            return tensor
        local = tensor.detach().to(self.device).contiguous()
        parts = [torch.empty_like(local) for _ in range(self.world_size)]
        dist.all_gather(parts, local)
        return torch.cat(parts)

    def barrier(self) -> None:
        if self.is_distributed:
            dist.barrier()

    def on_main(self, work: Callable[[], T]) -> T | None:
        """Run work on rank 0 only; a StrideError there is raised on every rank, so none waits forever."""
        result: T | None = None
        message: str | None = None
        if self.is_main:
            try:
                result = work()
            except StrideError as exc:
                if not self.is_distributed:
                    raise
                message = str(exc)
        if self.is_distributed:
            box = [message]
            dist.broadcast_object_list(box, src=0)
            message = box[0]
        if message is not None:
            raise StrideError(message)
        return result


def world_from_env() -> tuple[int, int, int]:
    """RANK, WORLD_SIZE and LOCAL_RANK as torchrun sets them (a single process without them)."""
    try:
        return (
            int(os.environ.get("RANK", "0")),
            int(os.environ.get("WORLD_SIZE", "1")),
            int(os.environ.get("LOCAL_RANK", "0")),
        )
    except ValueError:
        raise ConfigError(
            f"RANK/WORLD_SIZE/LOCAL_RANK must be integers, got {os.environ.get('RANK')!r}/"
            f"{os.environ.get('WORLD_SIZE')!r}/{os.environ.get('LOCAL_RANK')!r}; start the job with torchrun"
        ) from None


def start_world(device_name: str, global_batch: int) -> World:
    """Join the torchrun job when WORLD_SIZE > 1 (NCCL on CUDA, gloo on the CPU), else a single process."""
    rank, world_size, local_rank = world_from_env()
    if world_size <= 1:
        return World(device=choose_device(device_name))
    if global_batch % world_size:
        lower = max(world_size, global_batch // world_size * world_size)
        raise ConfigError(
            f"training.batch_size {global_batch} is the global batch of all {world_size} processes "
            f"(WORLD_SIZE) and must divide by {world_size}; use e.g. {lower} or {lower + world_size}"
        )
    device = choose_device(device_name, local_rank)
    if device.type == "cuda":  # GPU-only branch
        torch.cuda.set_device(device)
    # MASTER_ADDR, MASTER_PORT, RANK and WORLD_SIZE come from the environment torchrun sets.
    dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    if rank != 0:
        # Rank 0 reports; the others would only repeat it.
        get_logger("stride-train").setLevel(logging.WARNING)
    return World(rank=rank, world_size=world_size, local_rank=local_rank, device=device)


def stop_world(world: World) -> None:
    if world.is_distributed and dist.is_initialized():
        dist.destroy_process_group()
