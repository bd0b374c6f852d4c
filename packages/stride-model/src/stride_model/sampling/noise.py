"""Per-seed noise: one torch.Generator per ensemble member, so member k's noise depends on its seed only."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import torch
from torch import Tensor


class NoiseSource(Protocol):
    """What a solver draws churn noise from: noise shaped, typed and placed like x."""

    def randn_like(self, x: Tensor) -> Tensor: ...


class GlobalNoise:
    """torch's global generator (tests and one-off use; not reproducible per member)."""

    def randn_like(self, x: Tensor) -> Tensor:
        return torch.randn_like(x)


class StackedRandomGenerator:
    """One torch.Generator per seed (as in EDM generate.py): item k's noise depends only on seeds[k]."""

    def __init__(self, seeds: Sequence[int], device: torch.device | str = "cpu") -> None:
        # Drawing on CPU by default makes member k identical on CPU and GPU runs; pass a CUDA device to
        # trade that for speed.
        self.device = torch.device(device)
        self.seeds = [int(seed) for seed in seeds]
        for seed in self.seeds:
            if seed < 0:
                raise ValueError(f"StackedRandomGenerator: seeds must be >= 0, got {seed}")
        self.generators = [torch.Generator(self.device).manual_seed(seed) for seed in self.seeds]

    def randn(
        self,
        shape_per_item: Sequence[int],
        *,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
    ) -> Tensor:
        """Standard normal noise [len(seeds), *shape_per_item], one generator per item."""
        noise = torch.stack(
            [
                torch.randn(tuple(shape_per_item), generator=gen, dtype=dtype, device=self.device)
                for gen in self.generators
            ]
        )
        return noise.to(device if device is not None else self.device)

    def randn_like(self, x: Tensor) -> Tensor:
        """Noise shaped, typed and placed like x, whose first dimension must equal len(seeds)."""
        if x.shape[0] != len(self.generators):
            raise ValueError(
                f"randn_like: batch dimension {x.shape[0]} does not match {len(self.generators)} seeds"
            )
        return self.randn(x.shape[1:], dtype=x.dtype, device=x.device)
