"""Noise-level schedules, apart from the solvers (as in k-diffusion): each returns n levels from sigma_max
down to sigma_min, then an exact 0, as a float64 tensor of length n + 1.

- `karras`: EDM eq. 5, sigma_i = (sigma_max^(1/rho) + i/(n-1) (sigma_min^(1/rho) - sigma_max^(1/rho)))^rho.
- `loglinear`: geometric spacing, log sigma linear in i (k-diffusion's "exponential" schedule).
- `vp`: the time discretisation of the VP-SDE (Song et al. 2021; EDM Table 1), sigma(t) =
  sqrt(exp(beta_d t^2 / 2 + beta_min t) - 1), t uniform between the times whose sigma is sigma_max and
  sigma_min (so it honours the same bounds as the others instead of EDM's fixed t in [eps_s, 1]).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

Schedule = Callable[[int, float, float, float], Tensor]
"""schedule(n, sigma_min, sigma_max, rho) -> float64 [n + 1] levels ending in 0 (rho is ignored by some)."""

VP_BETA_D = 19.9
VP_BETA_MIN = 0.1


def _check(name: str, n: int, sigma_min: float, sigma_max: float) -> None:
    if n < 2:
        raise ValueError(f"{name}: n (number of steps) must be >= 2, got {n}")
    if not 0 < sigma_min < sigma_max:
        raise ValueError(f"{name}: need 0 < sigma_min < sigma_max, got {sigma_min} and {sigma_max}")


def _finish(levels: Tensor, sigma_min: float, sigma_max: float) -> Tensor:
    # Float pow/exp can miss the endpoints by an ulp; pin them so the schedule is exactly as asked.
    levels[0], levels[-1] = sigma_max, sigma_min
    return torch.cat([levels, torch.zeros(1, dtype=torch.float64)])


def karras_sigmas(n: int, sigma_min: float = 0.002, sigma_max: float = 80.0, rho: float = 7.0) -> Tensor:
    """n noise levels from sigma_max down to sigma_min (EDM eq. 5), then an exact 0: float64, length n+1."""
    _check("karras_sigmas", n, sigma_min, sigma_max)
    if rho <= 0:
        raise ValueError(f"karras_sigmas: rho must be > 0, got {rho}")
    i = torch.arange(n, dtype=torch.float64)
    levels = (sigma_max ** (1 / rho) + i / (n - 1) * (sigma_min ** (1 / rho) - sigma_max ** (1 / rho))) ** rho
    return _finish(levels, sigma_min, sigma_max)


def loglinear_sigmas(n: int, sigma_min: float = 0.002, sigma_max: float = 80.0, rho: float = 7.0) -> Tensor:
    """n geometrically spaced levels sigma_max .. sigma_min, then 0 (rho unused)."""
    del rho
    _check("loglinear_sigmas", n, sigma_min, sigma_max)
    levels = torch.linspace(math.log(sigma_max), math.log(sigma_min), n, dtype=torch.float64).exp()
    return _finish(levels, sigma_min, sigma_max)


def _vp_time(sigma: float) -> float:
    """Inverse of sigma(t) = sqrt(exp(beta_d t^2 / 2 + beta_min t) - 1): the positive root of a quadratic."""
    c = math.log1p(sigma**2)
    return (math.sqrt(VP_BETA_MIN**2 + 2 * VP_BETA_D * c) - VP_BETA_MIN) / VP_BETA_D


def vp_sigmas(n: int, sigma_min: float = 0.002, sigma_max: float = 80.0, rho: float = 7.0) -> Tensor:
    """n levels of the VP-SDE at uniform times between t(sigma_max) and t(sigma_min), then 0 (rho unused)."""
    del rho
    _check("vp_sigmas", n, sigma_min, sigma_max)
    t = torch.linspace(_vp_time(sigma_max), _vp_time(sigma_min), n, dtype=torch.float64)
    levels = torch.expm1(0.5 * VP_BETA_D * t**2 + VP_BETA_MIN * t).sqrt()
    return _finish(levels, sigma_min, sigma_max)


SCHEDULES: dict[str, Schedule] = {"karras": karras_sigmas, "loglinear": loglinear_sigmas, "vp": vp_sigmas}


def get_schedule(name: str) -> Schedule:
    """The schedule called `name`; an unknown name is a one-line error listing the known ones."""
    try:
        return SCHEDULES[name]
    except KeyError:
        raise ValueError(
            f"sampler.schedule: unknown schedule {name!r}; choose one of {', '.join(SCHEDULES)}"
        ) from None


def make_sigmas(
    name: str, n: int, sigma_min: float = 0.002, sigma_max: float = 80.0, rho: float = 7.0
) -> Tensor:
    """Levels of the schedule `name`: float64 [n + 1], sigma_max first, exactly 0 last."""
    return get_schedule(name)(n, sigma_min, sigma_max, rho)
