"""EMA: EDM's half-life and ramp-up rule, buffers, state round trip and copy_to."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import Tensor, nn

from stride_contracts.checkpoint import ModelSpec
from stride_model.ema import EMA, ema_beta
from stride_model.unet import UNet


class Scalar(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.p = nn.Parameter(torch.zeros(()))
        self.count: Tensor
        self.register_buffer("count", torch.zeros(()))


def test_beta_formula() -> None:
    # ema_nimg = min(halflife, seen * ratio) = min(1000, 500) = 500; beta = 0.5 ** (10 / 500).
    assert ema_beta(10, 10_000, 1000, 0.05) == pytest.approx(0.5 ** (10 / 500))
    assert ema_beta(10, 10**9, 1000, 0.05) == pytest.approx(0.5 ** (10 / 1000))
    assert ema_beta(10, 0, 1000, None) == pytest.approx(0.5 ** (10 / 1000))
    # At the very first step with ramp-up the average simply follows the weights.
    assert ema_beta(10, 0, 1000, 0.05) == 0.0


def test_halflife_on_scalar_parameter() -> None:
    model = Scalar()
    ema = EMA(model, halflife_samples=1000, rampup_ratio=None)
    with torch.no_grad():
        model.p.fill_(1.0)
    batch = 10
    for step in range(1, 101):  # 100 updates x 10 samples = one half-life
        ema.update(model, batch_size=batch, samples_seen=step * batch)
    # After one half-life, the initial value 0 still carries half the weight.
    assert ema.model.p.item() == pytest.approx(0.5, rel=1e-5)
    for step in range(101, 201):
        ema.update(model, batch_size=batch, samples_seen=step * batch)
    assert ema.model.p.item() == pytest.approx(0.75, rel=1e-5)


def test_rampup_single_update_matches_lerp() -> None:
    model = Scalar()
    ema = EMA(model, halflife_samples=10_000, rampup_ratio=0.05)
    with torch.no_grad():
        model.p.fill_(2.0)
        model.count.fill_(7.0)
    beta = ema.update(model, batch_size=4, samples_seen=400)
    assert beta == pytest.approx(0.5 ** (4 / 20))  # ema_nimg = min(10000, 400 * 0.05) = 20
    assert ema.model.p.item() == pytest.approx(2.0 * (1 - beta))
    assert ema.model.count.item() == 7.0  # buffers are copied, not averaged
    assert model.p.item() == 2.0  # the trained model is untouched


def test_ema_model_is_frozen_copy_and_round_trips(tiny_spec: Callable[..., ModelSpec]) -> None:
    model = UNet(tiny_spec())
    ema = EMA(model)
    assert not ema.model.training
    assert all(not p.requires_grad for p in ema.model.parameters())
    assert ema.model.conv_in.weight.data_ptr() != model.conv_in.weight.data_ptr()

    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    ema.update(model, batch_size=8, samples_seen=80)
    assert not torch.equal(ema.model.conv_in.weight, model.conv_in.weight)

    restored = EMA(UNet(tiny_spec()))
    restored.load_state_dict(ema.state_dict())
    for name, value in ema.state_dict().items():
        assert torch.equal(restored.state_dict()[name], value), name

    target = UNet(tiny_spec())
    ema.copy_to(target)
    assert torch.equal(target.conv_in.weight, ema.model.conv_in.weight)


def test_update_through_a_wrapper(tiny_spec: Callable[..., ModelSpec]) -> None:
    # DistributedDataParallel exposes the network as `.module`; names must still line up.
    model = UNet(tiny_spec())
    ema = EMA(model, rampup_ratio=None)
    wrapper = nn.Module()
    wrapper.module = model
    ema_before = ema.model.conv_in.weight.clone()
    with torch.no_grad():
        model.conv_in.weight.fill_(1.0)
    beta = ema.update(wrapper, batch_size=8, samples_seen=8)
    # p_ema = lerp(p, p_ema, beta), EDM's update.
    expected = torch.ones_like(ema_before).lerp(ema_before, beta)
    torch.testing.assert_close(ema.model.conv_in.weight, expected)


def test_rejects_bad_halflife() -> None:
    with pytest.raises(ValueError, match="halflife_samples"):
        EMA(Scalar(), halflife_samples=0)
