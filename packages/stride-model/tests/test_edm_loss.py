"""EDMLoss and regression_loss: noise-level sampling, masking of NaN targets, and that training learns."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import Tensor

from stride_contracts.checkpoint import ModelSpec
from stride_model.conditioning import Conditioning
from stride_model.loss import EDMLoss, regression_loss
from stride_model.precond import EDMPrecond, RegressionModel
from stride_model.unet import UNet

# The loss passes the conditioning through untouched; denoisers that ignore it get an empty one.
NO_COND = Conditioning(torch.zeros(1, 0, 1, 1))


def _finite_checking(denoiser: Callable[[Tensor, Tensor, Conditioning], Tensor]) -> Callable[..., Tensor]:
    def checked(x: Tensor, sigma: Tensor, condition: Conditioning) -> Tensor:
        assert torch.isfinite(x).all(), "a non-finite value reached the network"
        return denoiser(x, sigma, condition)

    return checked


def test_loss_is_finite_with_expected_shapes(tiny_spec: Callable[..., ModelSpec]) -> None:
    spec = tiny_spec()
    cond = Conditioning(torch.randn(4, spec.in_channels, 16, 24))
    out = EDMLoss()(EDMPrecond(spec), torch.randn(4, 1, 16, 24), cond)
    assert out.loss.shape == () and torch.isfinite(out.loss)
    assert out.per_sample.shape == (4,) and out.sigma.shape == (4,)
    assert (out.sigma > 0).all()
    torch.testing.assert_close(out.loss, out.per_sample.mean())


def test_log_sigma_follows_p_mean_and_p_std() -> None:
    def identity(x: Tensor, sigma: Tensor, condition: Conditioning) -> Tensor:
        return x

    out = EDMLoss(P_mean=-1.2, P_std=1.2)(identity, torch.zeros(20_000, 1, 1, 1), NO_COND)
    log_sigma = out.sigma.log()
    assert log_sigma.mean().item() == pytest.approx(-1.2, abs=0.05)
    assert log_sigma.std().item() == pytest.approx(1.2, abs=0.05)


def test_loss_weighting_matches_eq_2() -> None:
    # With D = 0 the per-pixel loss is weight * target^2,
    # weight = (sigma^2 + sigma_data^2) / (sigma sigma_data)^2.
    def zero(x: Tensor, sigma: Tensor, condition: Conditioning) -> Tensor:
        return torch.zeros_like(x)

    target = torch.full((3, 1, 2, 2), 2.0)
    out = EDMLoss(sigma_data=0.5)(zero, target, NO_COND)
    weight = (out.sigma**2 + 0.25) / (out.sigma * 0.5) ** 2
    torch.testing.assert_close(out.per_sample, weight * 4.0)


def test_mask_keeps_nan_out_of_network_and_loss(tiny_spec: Callable[..., ModelSpec]) -> None:
    spec = tiny_spec()
    unet = UNet(spec)
    torch.nn.init.normal_(unet.conv_out.weight, std=0.1)
    model = EDMPrecond(spec, unet)
    target = torch.randn(3, 1, 16, 24)
    condition = Conditioning(torch.randn(3, spec.in_channels, 16, 24))
    mask = torch.rand(3, 1, 16, 24) > 0.3
    mask[2] = False  # a sample with no valid pixel must not divide by zero
    with_nan = torch.where(mask, target, torch.nan)
    with_junk = torch.where(mask, target, 1e6)

    loss = EDMLoss()
    out_nan = loss(_finite_checking(model), with_nan, condition, mask, torch.Generator().manual_seed(1))
    out_junk = loss(model, with_junk, condition, mask, torch.Generator().manual_seed(1))
    assert torch.isfinite(out_nan.loss)
    # Whatever sits at invalid pixels, the loss is the same: they are excluded, not just finite.
    torch.testing.assert_close(out_nan.loss, out_junk.loss)
    torch.testing.assert_close(out_nan.per_sample, out_junk.per_sample)
    assert out_nan.per_sample[2] == 0
    out_nan.loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_generator_makes_loss_reproducible(tiny_spec: Callable[..., ModelSpec]) -> None:
    spec = tiny_spec()
    model = EDMPrecond(spec)
    target, condition = torch.randn(2, 1, 16, 24), Conditioning(torch.randn(2, spec.in_channels, 16, 24))
    a = EDMLoss()(model, target, condition, generator=torch.Generator().manual_seed(5))
    b = EDMLoss()(model, target, condition, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a.loss, b.loss) and torch.equal(a.sigma, b.sigma)


def test_mask_validation() -> None:
    def identity(x: Tensor, sigma: Tensor, condition: Conditioning) -> Tensor:
        return x

    target = torch.zeros(2, 1, 4, 4)
    with pytest.raises(
        ValueError, match=r"mask: expected the target's shape \[2, 1, 4, 4\], got \[2, 4, 4\]"
    ):
        EDMLoss()(identity, target, NO_COND, torch.ones(2, 4, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"torch\.bool"):
        EDMLoss()(identity, target, NO_COND, torch.ones(2, 1, 4, 4))


def _toy_batch(generator: torch.Generator, batch: int) -> tuple[Tensor, Conditioning]:
    # Target = a smooth field set by the condition plus a little independent noise: learnable, not trivial.
    condition = torch.randn(batch, 3, 1, 1, generator=generator).expand(batch, 3, 16, 24)
    ramp = torch.linspace(-1, 1, 24).expand(16, 24)
    target = (
        condition[:, :1] + condition[:, 1:2] * ramp + 0.1 * torch.randn(batch, 1, 16, 24, generator=generator)
    )
    return target, Conditioning(condition.contiguous())


def test_training_reduces_edm_loss(tiny_spec: Callable[..., ModelSpec]) -> None:
    spec = tiny_spec()
    model = EDMPrecond(spec)
    loss_fn = EDMLoss()
    eval_target, eval_condition = _toy_batch(torch.Generator().manual_seed(123), 64)

    def evaluate() -> float:
        with torch.no_grad():
            out = loss_fn(model, eval_target, eval_condition, generator=torch.Generator().manual_seed(9))
        return out.loss.item()

    before = evaluate()
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    data_rng = torch.Generator().manual_seed(0)
    for _ in range(200):
        target, condition = _toy_batch(data_rng, 16)
        optimizer.zero_grad()
        loss_fn(model, target, condition).loss.backward()
        optimizer.step()
    after = evaluate()
    assert after < 0.6 * before, (before, after)


def test_regression_loss_masks_and_learns(tiny_spec: Callable[..., ModelSpec]) -> None:
    spec = tiny_spec(kind="regression")
    model = RegressionModel(spec)
    target, condition = _toy_batch(torch.Generator().manual_seed(3), 8)
    mask = torch.ones_like(target, dtype=torch.bool)
    mask[:, :, :4] = False
    out = regression_loss(model, torch.where(mask, target, torch.nan), condition, mask)
    assert torch.isfinite(out.loss) and torch.equal(out.sigma, torch.zeros(8))
    # The untrained model predicts 0, so the loss is the mean square of the valid targets.
    torch.testing.assert_close(out.loss, target[mask].square().mean())

    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    for _ in range(60):
        optimizer.zero_grad()
        regression_loss(model, target, condition, mask).loss.backward()
        optimizer.step()
    assert regression_loss(model, target, condition, mask).loss < 0.5 * out.loss


def test_edm_loss_with_conditioning_is_eq_2(tiny_spec: Callable[..., ModelSpec]) -> None:
    """The loss of a FiLM-conditioned model is still EDM eq. 2, the noise drawn as before (sigma, then n)."""
    spec = tiny_spec(use_film_doy=True, n_time_features=2)
    model = EDMPrecond(spec)
    for parameter in model.parameters():  # make every part, FiLM included, matter
        parameter.data.normal_(0, 0.1)
    target = torch.randn(3, 1, 16, 24)
    cond = Conditioning(torch.randn(3, spec.in_channels, 16, 24), time_features=torch.randn(3, 2))
    mask = torch.rand(3, 1, 16, 24) > 0.25
    loss_fn = EDMLoss(P_mean=-0.8, P_std=1.1, sigma_data=0.6)
    out = loss_fn(model, target, cond, mask, generator=torch.Generator().manual_seed(4))

    draw = torch.Generator().manual_seed(4)
    sigma = (torch.randn(3, 1, 1, 1, generator=draw) * 1.1 - 0.8).exp()
    n = torch.randn(3, 1, 16, 24, generator=draw) * sigma
    y = torch.where(mask, target, 0.0)  # invalid pixels enter the network as 0
    with torch.no_grad():
        D = model(y + n, sigma.flatten(), cond)
    weight = (sigma**2 + 0.36) / (sigma * 0.6) ** 2
    per_pixel = weight * (D - y) ** 2
    expected = torch.stack([per_pixel[b][mask[b]].mean() for b in range(3)])
    torch.testing.assert_close(out.sigma, sigma.flatten())
    torch.testing.assert_close(out.per_sample, expected)
    torch.testing.assert_close(out.loss, per_pixel[mask].mean())
