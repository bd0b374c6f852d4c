"""Karras schedule, EDM Heun sampler against an analytic denoiser, and per-seed reproducibility."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import Tensor

from stride_contracts.checkpoint import ModelSpec
from stride_model.conditioning import Conditioning
from stride_model.precond import EDMPrecond
from stride_model.sampler import StackedRandomGenerator, edm_heun_sampler, sample_ensemble
from stride_model.schedule import karras_sigmas
from stride_model.unet import UNet

MU, S = 1.5, 0.4
# The analytic denoiser ignores its conditioning; the sampler passes it through.
NO_COND = Conditioning(torch.zeros(1, 0, 1, 1))


def _empty(batch: int) -> Conditioning:
    return Conditioning(torch.zeros(batch, 0, 2, 2))


def gaussian_denoiser(x: Tensor, sigma: Tensor, condition: Conditioning) -> Tensor:
    """Ideal denoiser for data ~ N(MU, S^2): E[y | y + n = x] with n ~ N(0, sigma^2)."""
    assert x.dtype == torch.float32 and sigma.dtype == torch.float32 and sigma.shape == (x.shape[0],)
    sigma = sigma.reshape(-1, 1, 1, 1)
    return MU + S**2 / (S**2 + sigma**2) * (x - MU)


@pytest.mark.parametrize("n", [2, 18, 40])
def test_karras_schedule_endpoints_and_order(n: int) -> None:
    sigmas = karras_sigmas(n, sigma_min=0.002, sigma_max=80.0, rho=7.0)
    assert sigmas.dtype == torch.float64 and sigmas.shape == (n + 1,)
    assert sigmas[0].item() == 80.0
    assert sigmas[n - 1].item() == 0.002
    assert sigmas[-1].item() == 0.0
    assert (sigmas[1:] < sigmas[:-1]).all()


def test_karras_schedule_matches_eq_5() -> None:
    n, lo, hi, rho = 5, 0.01, 10.0, 3.0
    expected = [
        (hi ** (1 / rho) + i / (n - 1) * (lo ** (1 / rho) - hi ** (1 / rho))) ** rho for i in range(n)
    ]
    assert karras_sigmas(n, lo, hi, rho)[:-1].tolist() == pytest.approx(expected, rel=1e-12)


def test_karras_schedule_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="n"):
        karras_sigmas(1, 0.002, 80.0, 7.0)
    with pytest.raises(ValueError, match="sigma_min < sigma_max"):
        karras_sigmas(10, 80.0, 0.002, 7.0)


@pytest.mark.parametrize(
    ("num_steps", "churn"),
    [(32, {}), (80, {"S_churn": 40.0, "S_min": 0.05, "S_max": 50.0, "S_noise": 1.0})],
)
def test_heun_sampler_recovers_gaussian(num_steps: int, churn: dict[str, Any]) -> None:
    generator = torch.Generator().manual_seed(0)
    latents = torch.randn(20_000, 1, 2, 2, generator=generator)

    def randn_like(x: Tensor) -> Tensor:
        return torch.randn(x.shape, generator=generator, dtype=x.dtype)

    sigmas = karras_sigmas(num_steps, 0.002, 80.0, 7.0)
    samples = edm_heun_sampler(gaussian_denoiser, latents, sigmas, NO_COND, randn_like=randn_like, **churn)
    assert samples.dtype == latents.dtype
    assert samples.mean().item() == pytest.approx(MU, rel=0.02)
    assert samples.std().item() == pytest.approx(S, rel=0.03)


def edm_reference_sampler(
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
    """NVlabs/edm generate.py edm_sampler, transcribed line by line (round_sigma is the identity)."""
    step_indices = torch.arange(num_steps, dtype=torch.float64, device=latents.device)
    t_steps = (
        sigma_max ** (1 / rho)
        + step_indices / (num_steps - 1) * (sigma_min ** (1 / rho) - sigma_max ** (1 / rho))
    ) ** rho
    t_steps = torch.cat([t_steps, torch.zeros_like(t_steps[:1])])
    x_next = latents.to(torch.float64) * t_steps[0]
    for i, (t_cur, t_next) in enumerate(zip(t_steps[:-1], t_steps[1:], strict=True)):  # noqa: RUF007 (as in EDM)
        x_cur = x_next
        gamma = min(S_churn / num_steps, math.sqrt(2) - 1) if S_min <= t_cur <= S_max else 0
        t_hat = t_cur + gamma * t_cur
        x_hat = x_cur + (t_hat**2 - t_cur**2).sqrt() * S_noise * randn_like(x_cur)
        denoised = net(x_hat, t_hat).to(torch.float64)
        d_cur = (x_hat - denoised) / t_hat
        x_next = x_hat + (t_next - t_hat) * d_cur
        if i < num_steps - 1:
            denoised = net(x_next, t_next).to(torch.float64)
            d_prime = (x_next - denoised) / t_next
            x_next = x_hat + (t_next - t_hat) * (0.5 * d_cur + 0.5 * d_prime)
    return x_next


@pytest.mark.parametrize("S_churn", [0.0, 30.0])
def test_matches_edm_reference_sampler(S_churn: float) -> None:
    def net(x: Tensor, t: Tensor) -> Tensor:
        sigma = t.to(torch.float32).expand(x.shape[0])
        return gaussian_denoiser(x.to(torch.float32), sigma, NO_COND)

    settings: dict[str, Any] = {"S_churn": S_churn, "S_min": 0.0, "S_max": math.inf, "S_noise": 1.007}
    latents = torch.randn(16, 1, 3, 3)
    rngs = [torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)]
    expected = edm_reference_sampler(
        net,
        latents,
        lambda x: torch.randn(x.shape, generator=rngs[0], dtype=x.dtype),
        12,
        0.002,
        80.0,
        7.0,
        **settings,
    )
    ours = edm_heun_sampler(
        gaussian_denoiser,
        latents.double(),
        karras_sigmas(12, 0.002, 80.0, 7.0),
        NO_COND,
        randn_like=lambda x: torch.randn(x.shape, generator=rngs[1], dtype=x.dtype),
        **settings,
    )
    torch.testing.assert_close(ours, expected, rtol=1e-6, atol=1e-6)


def test_heun_sampler_is_second_order() -> None:
    # Deterministic ODE: the mapping latent -> sample is affine, sample = MU + S * latent (up to O(h^2)).
    latents = torch.linspace(-2, 2, 9, dtype=torch.float64).reshape(9, 1, 1, 1)
    errors = []
    for steps in (8, 16):
        out = edm_heun_sampler(gaussian_denoiser, latents, karras_sigmas(steps, 0.002, 80.0, 7.0), NO_COND)
        exact = MU + (out.new_tensor(S**2 + 0.002**2).sqrt() / math.sqrt(S**2 + 80.0**2)) * 80.0 * latents
        errors.append((out - exact).abs().max().item())
    # Halving the step size must cut the error by much more than the 2x of a first-order method.
    assert errors[1] < errors[0] / 3, errors


def test_callback_sees_every_step() -> None:
    seen: list[tuple[int, float]] = []
    sigmas = karras_sigmas(6, 0.002, 80.0, 7.0)
    edm_heun_sampler(
        gaussian_denoiser,
        torch.randn(2, 1, 2, 2),
        sigmas,
        NO_COND,
        callback=lambda i, t, x: seen.append((i, t)),
    )
    assert seen == [(i, float(sigmas[i])) for i in range(6)]


def test_stacked_generator_is_batch_independent() -> None:
    alone = StackedRandomGenerator([7]).randn((3, 4))
    batched = StackedRandomGenerator([3, 7, 11]).randn((3, 4))
    assert batched.shape == (3, 3, 4)
    assert torch.equal(alone[0], batched[1])
    assert not torch.equal(batched[0], batched[1])


def test_member_reproducible_alone_or_in_batch_with_churn(tiny_spec: Callable[..., ModelSpec]) -> None:
    spec = tiny_spec()
    unet = UNet(spec)
    torch.nn.init.normal_(unet.conv_out.weight, std=0.05)
    model = EDMPrecond(spec, unet).eval()
    condition = Conditioning(torch.randn(1, spec.in_channels, 16, 24))
    settings: dict[str, Any] = {"num_steps": 4, "S_churn": 10.0}

    alone = sample_ensemble(model, condition, [7], out_channels=1, **settings)
    batch = sample_ensemble(model, condition, [3, 7, 11], out_channels=1, **settings)
    chunked = sample_ensemble(model, condition, [3, 7, 11], out_channels=1, batch_size=2, **settings)
    assert alone.shape == (1, 1, 1, 16, 24) and batch.shape == (1, 3, 1, 16, 24)
    # The network's batched kernels may round differently by batch size; the noise itself is identical.
    torch.testing.assert_close(batch[:, 1], alone[:, 0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(chunked, batch, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(batch[:, 0], batch[:, 1])


def test_member_bitwise_reproducible_with_analytic_denoiser() -> None:
    condition = _empty(2)
    settings: dict[str, Any] = {"num_steps": 6, "S_churn": 20.0}
    alone = sample_ensemble(gaussian_denoiser, condition, [[7], [8]], out_channels=1, **settings)
    batch = sample_ensemble(gaussian_denoiser, condition, [[5, 7], [8, 9]], out_channels=1, **settings)
    assert torch.equal(alone[0, 0], batch[0, 1])
    assert torch.equal(alone[1, 0], batch[1, 0])


def test_sample_ensemble_seed_validation() -> None:
    with pytest.raises(ValueError, match="2 equal-length lists"):
        sample_ensemble(gaussian_denoiser, _empty(2), [[1, 2], [3]], out_channels=1)
    with pytest.raises(ValueError, match="at least one seed"):
        sample_ensemble(gaussian_denoiser, _empty(2), [], out_channels=1)
    with pytest.raises(ValueError, match="batch_size must be >= 1, got 0"):
        sample_ensemble(gaussian_denoiser, _empty(2), [1], out_channels=1, batch_size=0)
