"""Generation across the ranks of a torchrun (or srun with torchrun's variables) job: dates sharded by chunk.

Every rank samples its share of the date chunks (chunk i goes to rank i mod WORLD_SIZE) and writes them
into the one pre-created samples store with region writes: a chunk is whole Zarr chunks (one per date),
so no two ranks ever write the same file. Rank 0 alone creates the store, writes the manifest, publishes
the store and records the MLflow run (stride_core.tracking gives the other ranks a context that records
nothing); the ranks meet at barriers of a gloo process group (the CPU backend, also beside CUDA: only
barriers travel) after the store is created and after the last chunk is written. Each member depends on
its date's seeds only, so the store equals a single-process run bit for bit.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist

from stride_core.errors import ConfigError
from stride_core.progress import get_logger

log = get_logger("stride-generate")


@dataclass(frozen=True)
class Ranks:
    """This process's rank among `world_size` generation processes."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def share(self, chunks: list[int]) -> list[int]:
        """This rank's chunks (starts) of the ordered list of all chunks: every world_size-th, from its rank."""
        return chunks[self.rank :: self.world_size]

    def barrier(self) -> None:
        if self.world_size > 1:
            dist.barrier()

    def device(self, name: str) -> torch.device:
        """cuda:LOCAL_RANK when CUDA is used, else the CPU."""
        if name != "cpu" and torch.cuda.is_available():
            return torch.device("cuda", self.local_rank % torch.cuda.device_count())
        return torch.device("cpu")


def join_ranks() -> Ranks:
    """The job's ranks from RANK / WORLD_SIZE / LOCAL_RANK (torchrun's); one process without them."""
    try:
        rank = int(os.environ.get("RANK", "0"))
        world_size = int(os.environ.get("WORLD_SIZE", "1"))
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    except ValueError:
        raise ConfigError(
            f"RANK/WORLD_SIZE/LOCAL_RANK must be integers, got {os.environ.get('RANK')!r}/"
            f"{os.environ.get('WORLD_SIZE')!r}/{os.environ.get('LOCAL_RANK')!r}; start the job with torchrun"
        ) from None
    if world_size <= 1:
        return Ranks()
    if not 0 <= rank < world_size:
        raise ConfigError(f"RANK {rank} is outside 0..{world_size - 1} (WORLD_SIZE {world_size})")
    if not dist.is_initialized():
        # MASTER_ADDR and MASTER_PORT come from torchrun. Sampling a chunk can take long: generous timeout.
        dist.init_process_group(backend="gloo", timeout=timedelta(hours=6))
    if rank != 0:
        log.setLevel(logging.WARNING)  # rank 0 reports progress; the others would repeat it
    return Ranks(rank=rank, world_size=world_size, local_rank=local_rank)


def leave_ranks(ranks: Ranks) -> None:
    if ranks.world_size > 1 and dist.is_initialized():
        dist.destroy_process_group()
