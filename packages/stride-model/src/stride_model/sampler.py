"""Compatibility: the EDM Heun sampler and ensemble sampling, now in stride_model.sampling."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from stride_model.conditioning import Conditioning
from stride_model.sampling.ensemble import Tiling, sample_ensemble, sampler_kwargs
from stride_model.sampling.noise import StackedRandomGenerator
from stride_model.sampling.solvers import Churn, Denoiser, StepCallback, get_solver

__all__ = [
    "Denoiser",
    "StackedRandomGenerator",
    "StepCallback",
    "Tiling",
    "edm_heun_sampler",
    "sample_ensemble",
    "sampler_kwargs",
]


class _Noise:
    def __init__(self, randn_like: Callable[[Tensor], Tensor]) -> None:
        self.randn_like = randn_like


def edm_heun_sampler(
    denoiser: Denoiser,
    latents: Tensor,
    sigmas: Tensor,
    cond: Conditioning,
    *,
    S_churn: float = 0.0,
    S_min: float = 0.0,
    S_max: float = math.inf,
    S_noise: float = 1.0,
    randn_like: Callable[[Tensor], Tensor] = torch.randn_like,
    callback: StepCallback | None = None,
) -> Tensor:
    """EDM Algorithm 2 (the 'heun' solver of stride_model.sampling.solvers) with churn noise from randn_like."""
    return get_solver("heun")(
        denoiser,
        latents,
        sigmas,
        cond,
        generator=_Noise(randn_like),
        callback=callback,
        churn=Churn(S_churn, S_min, S_max, S_noise),
    )
