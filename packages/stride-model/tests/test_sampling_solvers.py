"""Every solver against analytic truth (Gaussian and two-component Gaussian mixture data with their exact
denoisers), EDM's edm_sampler transcribed from the paper on a tiny network, NFE counts and bad names.

Step counts at which the statistics are checked (documented in the parametrisation): heun, dpm2 and
dpmpp_2m 32 steps, euler 128 steps (first order); with churn heun/dpm2 64 steps, euler 256.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch
from torch import Tensor

from stride_contracts.checkpoint import ModelSpec
from stride_model.conditioning import Conditioning
from stride_model.precond import EDMPrecond
from stride_model.sampling import (
    SOLVERS,
    Churn,
    StackedRandomGenerator,
    get_solver,
    make_sigmas,
    nfe,
    steps_for_nfe,
)
from stride_model.unet import UNet

NO_COND = Conditioning(torch.zeros(1, 0, 1, 1))
MU, S = 1.5, 0.4
# Two well-separated components: weight PI of N(M1, S1^2), 1 - PI of N(M2, S2^2).
PI, M1, S1, M2, S2 = 0.3, -2.0, 0.5, 2.0, 0.7


def gaussian_denoiser(x: Tensor, sigma: Tensor, cond: Conditioning) -> Tensor:
    """E[y | y + sigma n = x] for y ~ N(MU, S^2)."""
    s2 = sigma.reshape(-1, 1, 1, 1).double() ** 2
    return (MU + S**2 / (S**2 + s2) * (x.double() - MU)).float()


def mixture_denoiser(x: Tensor, sigma: Tensor, cond: Conditioning) -> Tensor:
    """E[y | x] for the mixture: responsibilities from N(x; m_k, s_k^2 + sigma^2), then each component's mean."""
    x64, s2 = x.double(), sigma.reshape(-1, 1, 1, 1).double() ** 2
    log_w, means = [], []
    for weight, m, s in ((PI, M1, S1), (1 - PI, M2, S2)):
        var = s**2 + s2
        log_w.append(math.log(weight) - 0.5 * torch.log(var) - 0.5 * (x64 - m) ** 2 / var)
        means.append(m + s**2 / var * (x64 - m))
    r = torch.softmax(torch.stack(log_w), dim=0)
    return (r[0] * means[0] + r[1] * means[1]).float()


def _sample(name: str, data: str, steps: int, churn: Churn, seed: int = 0) -> Tensor:
    generator = torch.Generator().manual_seed(seed)

    class Noise:
        def randn_like(self, x: Tensor) -> Tensor:
            return torch.randn(x.shape, generator=generator, dtype=x.dtype)

    # Latents from the exact p(x; sigma_max) = p_data * N(0, sigma_max^2) (divided by sigma_max, the solver
    # scales them back): N(0, sigma_max^2) alone would bias the mean by MU S / sigma_max, a property of the
    # prior, not of the solver.
    shape = (6_000, 1, 2, 2)  # 24k scalars
    if data == "gaussian":
        y0 = MU + S * torch.randn(shape, generator=generator, dtype=torch.float64)
        denoiser = gaussian_denoiser
    else:
        first = torch.rand(shape, generator=generator, dtype=torch.float64) < PI
        z = torch.randn(shape, generator=generator, dtype=torch.float64)
        y0 = torch.where(first, M1 + S1 * z, M2 + S2 * z)
        denoiser = mixture_denoiser
    sigma_max = 80.0
    latents = (y0 + sigma_max * torch.randn(shape, generator=generator, dtype=torch.float64)) / sigma_max
    sigmas = make_sigmas("karras", steps, 0.002, sigma_max, 7.0)
    return get_solver(name)(denoiser, latents, sigmas, NO_COND, generator=Noise(), churn=churn).flatten()


def _mixture_statistics(y: Tensor) -> list[float]:
    first = y < 0
    return [
        first.double().mean().item(),
        y[first].mean().item(),
        y[first].std().item(),
        y[~first].mean().item(),
        y[~first].std().item(),
    ]


CHURN = Churn(S_churn=10.0, S_min=0.05, S_max=50.0)
# The documented step counts: second-order solvers at 64 steps, first-order Euler at 512.
CASES = [
    ("heun", 64, Churn()),
    ("euler", 512, Churn()),
    ("dpm2", 64, Churn()),
    ("dpmpp_2m", 64, Churn()),
    ("heun", 64, CHURN),
    ("euler", 512, CHURN),
    ("dpm2", 64, CHURN),
]


@pytest.mark.parametrize(("name", "steps", "churn"), CASES)
def test_solver_recovers_gaussian(name: str, steps: int, churn: Churn) -> None:
    y = _sample(name, "gaussian", steps, churn)
    # 24k samples: the standard error of the mean is S / 155 = 0.0026, of the std about 0.0018.
    assert y.mean().item() == pytest.approx(MU, abs=0.01)
    assert y.std().item() == pytest.approx(S, rel=0.02)


@pytest.mark.parametrize(("name", "steps", "churn"), CASES)
def test_solver_recovers_gaussian_mixture(name: str, steps: int, churn: Churn) -> None:
    y = _sample(name, "mixture", steps, churn, seed=1)
    # The same statistics of 24k exact draws (the split at 0 slightly mixes the components in both).
    generator = torch.Generator().manual_seed(2)
    first = torch.rand(24_000, generator=generator, dtype=torch.float64) < PI
    z = torch.randn(24_000, generator=generator, dtype=torch.float64)
    exact = _mixture_statistics(torch.where(first, M1 + S1 * z, M2 + S2 * z))
    assert exact[0] == pytest.approx(PI, abs=0.01)
    # Weight: two-sample standard error 0.004; component moments from ~7k and ~17k samples each.
    assert _mixture_statistics(y) == pytest.approx(exact, abs=0.03)
    assert _mixture_statistics(y)[0] == pytest.approx(exact[0], abs=0.015)


@pytest.mark.parametrize(("name", "order"), [("euler", 1), ("heun", 2), ("dpm2", 2), ("dpmpp_2m", 2)])
def test_convergence_order_on_the_gaussian_ode(name: str, order: int) -> None:
    # The probability-flow ODE of Gaussian data is exactly x(sigma) - MU ∝ sqrt(S^2 + sigma^2).
    latents = torch.linspace(-2, 2, 9, dtype=torch.float64).reshape(9, 1, 1, 1)
    exact = MU + S / math.sqrt(S**2 + 80.0**2) * (80.0 * latents - MU)
    errors = []
    for steps in (16, 32):
        sigmas = make_sigmas("karras", steps, 1e-4, 80.0, 7.0)
        out = get_solver(name)(gaussian_denoiser, latents, sigmas, NO_COND)
        errors.append((out - exact).abs().max().item())
    ratio = errors[0] / errors[1]
    assert ratio > (1.6 if order == 1 else 3.0), errors
    if order == 1:
        assert ratio < 2.6, errors  # really first order: the test tells the orders apart


@pytest.mark.parametrize("name", sorted(SOLVERS))
def test_nfe_and_exact_zero_at_the_end(name: str) -> None:
    seen: list[float] = []

    def counting(x: Tensor, sigma: Tensor, cond: Conditioning) -> Tensor:
        seen.append(float(sigma[0]))
        return gaussian_denoiser(x, sigma, cond)

    steps = 7
    sigmas = make_sigmas("karras", steps, 0.002, 80.0, 7.0)
    steps_seen: list[tuple[int, float]] = []
    get_solver(name)(
        counting, torch.randn(3, 1, 2, 2), sigmas, NO_COND, callback=lambda i, t, x: steps_seen.append((i, t))
    )
    assert len(seen) == nfe(name, steps)
    assert min(seen) > 0  # never evaluated at sigma = 0
    assert steps_seen == [(i, float(sigmas[i])) for i in range(steps)]
    assert nfe(name, steps_for_nfe(name, 18)) <= 18 < nfe(name, steps_for_nfe(name, 18) + 1)


def test_solver_registry_and_bad_input() -> None:
    with pytest.raises(
        ValueError, match=r"sampler.solver: unknown solver 'ddim'; choose one of heun, euler, dpm2, dpmpp_2m"
    ):
        get_solver("ddim")
    with pytest.raises(ValueError, match="dpmpp_2m is a deterministic multistep solver"):
        get_solver("dpmpp_2m")(
            gaussian_denoiser,
            torch.randn(1, 1, 2, 2),
            make_sigmas("karras", 4),
            NO_COND,
            churn=Churn(S_churn=1.0),
        )
    with pytest.raises(ValueError, match="NFE budget 2 is too small for heun"):
        steps_for_nfe("heun", 2)


def edm_sampler_transcribed(
    net: Callable[[Tensor, Tensor], Tensor],
    latents: Tensor,
    randn_like: Callable[[Tensor], Tensor],
    num_steps: int,
    sigma_min: float,
    sigma_max: float,
    rho: float,
    S_churn: float,
    S_min: float,
    S_max: float,
    S_noise: float,
) -> Tensor:
    """EDM (Karras et al. 2022) Algorithm 2 with eq. 5 levels, as EDM's generate.py runs it: noise drawn at
    every step (zero-scaled outside [S_min, S_max]), float64 state, no correction on the step to 0."""
    i = torch.arange(num_steps, dtype=torch.float64)
    t = (
        sigma_max ** (1 / rho) + i / (num_steps - 1) * (sigma_min ** (1 / rho) - sigma_max ** (1 / rho))
    ) ** rho
    t = torch.cat([t, torch.zeros(1, dtype=torch.float64)])
    x = latents.to(torch.float64) * t[0]
    for n in range(num_steps):
        gamma = min(S_churn / num_steps, math.sqrt(2) - 1) if S_min <= t[n] <= S_max else 0.0
        t_hat = t[n] + gamma * t[n]
        x_hat = x + (t_hat**2 - t[n] ** 2).sqrt() * S_noise * randn_like(x)
        d = (x_hat - net(x_hat, t_hat).to(torch.float64)) / t_hat
        x = x_hat + (t[n + 1] - t_hat) * d
        if n < num_steps - 1:
            d_prime = (x - net(x, t[n + 1]).to(torch.float64)) / t[n + 1]
            x = x_hat + (t[n + 1] - t_hat) * (0.5 * d + 0.5 * d_prime)
    return x


@pytest.mark.parametrize(
    "window", [(0.0, math.inf), (0.05, 1.0), (2.0, 50.0), (100.0, 200.0)], ids=["all", "low", "high", "none"]
)
def test_heun_matches_edm_sampler_seed_for_seed_with_any_churn_window(
    tiny_spec: Callable[..., ModelSpec], window: tuple[float, float]
) -> None:
    spec = tiny_spec()
    unet = UNet(spec)
    torch.nn.init.normal_(unet.conv_out.weight, std=0.05)
    model = EDMPrecond(spec, unet).eval()
    cond = Conditioning(torch.randn(3, spec.in_channels, 16, 24))
    seeds = [4, 9, 17]
    settings = {"S_churn": 30.0, "S_min": window[0], "S_max": window[1], "S_noise": 1.003}
    steps = 8

    def net(x: Tensor, t: Tensor) -> Tensor:
        return model(x.to(torch.float32), t.to(torch.float32).expand(x.shape[0]), cond)

    with torch.no_grad():
        reference_rng = StackedRandomGenerator(seeds)
        expected = edm_sampler_transcribed(
            net,
            reference_rng.randn((1, 16, 24)),
            reference_rng.randn_like,
            steps,
            0.002,
            80.0,
            7.0,
            **settings,
        )
    rng = StackedRandomGenerator(seeds)
    ours = get_solver("heun")(
        model,
        rng.randn((1, 16, 24)),
        make_sigmas("karras", steps, 0.002, 80.0, 7.0),
        cond,
        generator=rng,
        churn=Churn(**settings),
    )
    torch.testing.assert_close(ours.double(), expected, rtol=1e-6, atol=1e-6)
