"""Solvers of the probability-flow ODE (and EDM's churned SDE) in sigma, one signature for all:

    solver(denoiser, latents, sigmas, cond, *, generator=None, callback=None, churn=NO_CHURN) -> Tensor

- `denoiser(x, sigma, cond)`: D(x; sigma), x float32 [B, C, H, W], sigma float32 [B] -> float32 like x.
- `latents`: unit-variance noise [B, C, H, W], scaled here by sigmas[0].
- `sigmas`: a schedule (stride_model.sampling.schedules), float64, decreasing, ending in exactly 0.
- `generator`: where churn noise comes from (`randn_like(x)`, e.g. a StackedRandomGenerator); None: torch's
  global generator.
- `callback(i, sigma_i, x)` after step i with the state at sigmas[i + 1].
- `churn`: EDM's stochastic churn (Karras et al. 2022, Alg. 2). When S_churn > 0, noise is drawn at every
  step and multiplied by 0 where gamma = 0 (outside [S_min, S_max]), as EDM's generate.py does, so a
  member's random stream, hence its sample, is the reference's with any window. With S_churn = 0 nothing
  is drawn (the draws could not change anything).

The state and all arithmetic between network calls are float64 (Python floats for the levels); the last
step lands exactly on sigma = 0 with one network call for every solver (no division by sigma = 0).
Returns x at sigmas[-1] in the latents' dtype.

Network evaluations (NFE) for n = len(sigmas) - 1 steps: heun and dpm2 2n - 1, euler and dpmpp_2m n
(`nfe`, `steps_for_nfe`). Written from the papers: EDM Alg. 1/2 (heun, euler), Karras et al.'s DPM-Solver-2
variant as in k-diffusion's `sample_dpm_2` (a midpoint at the geometric mean of the two levels), and
DPM-Solver++(2M) (Lu et al. 2022, Alg. 2) in the data-prediction form with t = -log sigma.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from stride_model.conditioning import Conditioning
from stride_model.sampling.noise import GlobalNoise, NoiseSource

Denoiser = Callable[[Tensor, Tensor, Conditioning], Tensor]
StepCallback = Callable[[int, float, Tensor], None]


@dataclass(frozen=True)
class Churn:
    """EDM Alg. 2 churn: at levels in [S_min, S_max] raise sigma by gamma = min(S_churn / n, sqrt 2 - 1)."""

    S_churn: float = 0.0
    S_min: float = 0.0
    S_max: float = math.inf
    S_noise: float = 1.0

    def __post_init__(self) -> None:
        if self.S_churn < 0 or self.S_min < 0 or self.S_max < 0 or self.S_noise <= 0:
            raise ValueError(
                f"churn: need S_churn, S_min, S_max >= 0 and S_noise > 0, got {self.S_churn}, {self.S_min}, "
                f"{self.S_max}, {self.S_noise}"
            )

    def gamma(self, sigma: float, num_steps: int) -> float:
        if self.S_min <= sigma <= self.S_max:
            return min(self.S_churn / num_steps, math.sqrt(2) - 1)
        return 0.0


NO_CHURN = Churn()


class Solver:
    """Shared plumbing: checks, the float64 state, the network call and the churn step."""

    name = ""
    nfe_per_step = 1
    last_step_nfe = 1
    stochastic = True

    def __call__(
        self,
        denoiser: Denoiser,
        latents: Tensor,
        sigmas: Tensor,
        cond: Conditioning,
        *,
        generator: NoiseSource | None = None,
        callback: StepCallback | None = None,
        churn: Churn = NO_CHURN,
    ) -> Tensor:
        if sigmas.ndim != 1 or sigmas.numel() < 2:
            raise ValueError(
                f"sigmas: expected a 1-D schedule of at least 2 levels, got shape {list(sigmas.shape)}"
            )
        if churn.S_churn > 0 and not self.stochastic:
            raise ValueError(
                f"sampler.S_churn: {self.name} is a deterministic multistep solver; set S_churn to 0 or "
                f"choose heun, euler or dpm2"
            )
        # Python floats (float64) for the noise levels: exact arithmetic and no device syncs in the loop.
        levels = [float(t) for t in sigmas.to(torch.float64)]
        cond = cond.to(latents.device)
        batch = latents.shape[0]
        noise = generator if generator is not None else GlobalNoise()

        def D(x: Tensor, sigma: float) -> Tensor:
            sigma_batch = torch.full((batch,), sigma, dtype=torch.float32, device=x.device)
            return denoiser(x.to(torch.float32), sigma_batch, cond).to(torch.float64)

        with torch.no_grad():
            x = latents.to(torch.float64) * levels[0]
            x = self.run(D, x, levels, noise, churn, callback)
        return x.to(latents.dtype)

    def run(
        self,
        D: Callable[[Tensor, float], Tensor],
        x: Tensor,
        levels: list[float],
        noise: NoiseSource,
        churn: Churn,
        callback: StepCallback | None,
    ) -> Tensor:
        num_steps = len(levels) - 1
        for i, (t_cur, t_next) in enumerate(itertools.pairwise(levels)):
            x_hat, t_hat = _churn(x, t_cur, num_steps, noise, churn)
            x = self.step(D, x_hat, t_hat, t_next)
            if callback is not None:
                callback(i, t_cur, x)
        return x

    def step(self, D: Callable[[Tensor, float], Tensor], x: Tensor, t_hat: float, t_next: float) -> Tensor:
        raise NotImplementedError


def _churn(x: Tensor, t_cur: float, num_steps: int, noise: NoiseSource, churn: Churn) -> tuple[Tensor, float]:
    """EDM Alg. 2 lines 4-6: x_hat = x + sqrt(t_hat^2 - t^2) S_noise eps with t_hat = (1 + gamma) t."""
    if churn.S_churn == 0:
        return x, t_cur
    gamma = churn.gamma(t_cur, num_steps)
    t_hat = t_cur + gamma * t_cur
    # Drawn even when gamma = 0, as EDM does: the stream of draws must not depend on the window.
    return x + math.sqrt(t_hat**2 - t_cur**2) * churn.S_noise * noise.randn_like(x), t_hat


class EulerSolver(Solver):
    """EDM Alg. 2 without the second-order correction: x' = x + (t_next - t_hat) (x - D(x)) / t_hat."""

    name = "euler"

    def step(self, D: Callable[[Tensor, float], Tensor], x: Tensor, t_hat: float, t_next: float) -> Tensor:
        d = (x - D(x, t_hat)) / t_hat
        return x + (t_next - t_hat) * d


class HeunSolver(Solver):
    """EDM Alg. 2: an Euler step, then the trapezoidal correction (skipped on the step that reaches 0)."""

    name = "heun"
    nfe_per_step = 2

    def step(self, D: Callable[[Tensor, float], Tensor], x: Tensor, t_hat: float, t_next: float) -> Tensor:
        d_cur = (x - D(x, t_hat)) / t_hat
        x_next = x + (t_next - t_hat) * d_cur
        if t_next != 0:
            d_prime = (x_next - D(x_next, t_next)) / t_next
            x_next = x + (t_next - t_hat) * (0.5 * d_cur + 0.5 * d_prime)
        return x_next


class DPM2Solver(Solver):
    """DPM-Solver-2 in sigma (k-diffusion's sample_dpm_2): the slope at the geometric midpoint
    sigma_mid = sqrt(t_hat t_next), reached by an Euler half step, carries the whole step; Euler to 0."""

    name = "dpm2"
    nfe_per_step = 2

    def step(self, D: Callable[[Tensor, float], Tensor], x: Tensor, t_hat: float, t_next: float) -> Tensor:
        d = (x - D(x, t_hat)) / t_hat
        if t_next == 0:
            return x + (t_next - t_hat) * d
        t_mid = math.sqrt(t_hat * t_next)
        x_mid = x + (t_mid - t_hat) * d
        d_mid = (x_mid - D(x_mid, t_mid)) / t_mid
        return x + (t_next - t_hat) * d_mid


class DPMpp2MSolver(Solver):
    """DPM-Solver++(2M), data prediction, lambda = -log sigma, step h = lambda_next - lambda:
    x_next = (sigma_next / sigma) x - expm1(-h) D_hat, D_hat = (1 + 1/(2r)) D_i - 1/(2r) D_{i-1} with
    r = h_prev / h (first order on the first step; the step to sigma = 0 returns D_i exactly)."""

    name = "dpmpp_2m"
    stochastic = False

    def run(
        self,
        D: Callable[[Tensor, float], Tensor],
        x: Tensor,
        levels: list[float],
        noise: NoiseSource,
        churn: Churn,
        callback: StepCallback | None,
    ) -> Tensor:
        del noise, churn  # deterministic (checked by the caller)
        previous: Tensor | None = None
        h_prev = 0.0
        for i, (t_cur, t_next) in enumerate(itertools.pairwise(levels)):
            denoised = D(x, t_cur)
            if t_next == 0:
                x = denoised
            else:
                h = math.log(t_cur) - math.log(t_next)
                estimate = denoised
                if previous is not None:
                    r = h_prev / h
                    estimate = (1 + 1 / (2 * r)) * denoised - (1 / (2 * r)) * previous
                x = (t_next / t_cur) * x - math.expm1(-h) * estimate
                h_prev = h
            previous = denoised
            if callback is not None:
                callback(i, t_cur, x)
        return x


SOLVERS: dict[str, Solver] = {
    solver.name: solver for solver in (HeunSolver(), EulerSolver(), DPM2Solver(), DPMpp2MSolver())
}


def get_solver(name: str) -> Solver:
    """The solver called `name`; an unknown name is a one-line error listing the known ones."""
    try:
        return SOLVERS[name]
    except KeyError:
        raise ValueError(
            f"sampler.solver: unknown solver {name!r}; choose one of {', '.join(SOLVERS)}"
        ) from None


def nfe(name: str, steps: int) -> int:
    """Network evaluations of `steps` steps (the step that reaches sigma = 0 costs one for every solver)."""
    solver = get_solver(name)
    return solver.nfe_per_step * (steps - 1) + solver.last_step_nfe


def steps_for_nfe(name: str, budget: int) -> int:
    """The most steps (>= 2) whose NFE does not exceed `budget`."""
    solver = get_solver(name)
    steps = (budget - solver.last_step_nfe) // solver.nfe_per_step + 1
    if steps < 2:
        raise ValueError(f"NFE budget {budget} is too small for {name}: 2 steps need {nfe(name, 2)}")
    return steps
