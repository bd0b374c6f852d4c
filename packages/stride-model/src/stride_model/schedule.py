"""Noise-level schedules for the samplers, kept apart from the solvers (as in k-diffusion)."""

from __future__ import annotations

import torch
from torch import Tensor


def karras_sigmas(n: int, sigma_min: float = 0.002, sigma_max: float = 80.0, rho: float = 7.0) -> Tensor:
    """n noise levels from sigma_max down to sigma_min (EDM eq. 5), then an exact 0: float64, length n+1."""
    if n < 2:
        raise ValueError(f"karras_sigmas: n (number of steps) must be >= 2, got {n}")
    if not 0 < sigma_min < sigma_max:
        raise ValueError(f"karras_sigmas: need 0 < sigma_min < sigma_max, got {sigma_min} and {sigma_max}")
    if rho <= 0:
        raise ValueError(f"karras_sigmas: rho must be > 0, got {rho}")
    step_indices = torch.arange(n, dtype=torch.float64)
    # EDM eq. 5: t_i = (sigma_max^(1/rho) + i/(N-1) (sigma_min^(1/rho) - sigma_max^(1/rho)))^rho.
    t_steps = (
        sigma_max ** (1 / rho) + step_indices / (n - 1) * (sigma_min ** (1 / rho) - sigma_max ** (1 / rho))
    ) ** rho
    # The float pow can miss the endpoints by an ulp; pin them so the schedule is exactly as asked.
    t_steps[0], t_steps[-1] = sigma_max, sigma_min
    return torch.cat([t_steps, torch.zeros(1, dtype=torch.float64)])
