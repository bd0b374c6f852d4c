"""The per-member RainGate draw: the ensemble's wet frequency follows P(wet), and member k depends on its seed."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch

from stride_contracts.checkpoint import (
    ModelSpec,
    TransformSet,
    VariableTransform,
    ZScoreSpec,
)
from stride_core.transforms import VariableTransforms
from stride_model import Conditioning, apply_rain_gate, build_model
from stride_model.members import physical_members
from stride_model.rain_gate import RainGateSettings, gate_uniforms

M = 400


def _known_probability() -> torch.Tensor:
    """Logits [1, 1, 24, 32] of P(wet) from 0.02 (left) to 0.98 (right), the same in every row."""
    p = torch.linspace(0.02, 0.98, 32, dtype=torch.float64).expand(24, 32)
    return torch.logit(p)[None, None].float()


def _wet_frequency(gated: torch.Tensor) -> np.ndarray:
    return (gated > 0).double().mean(dim=1).numpy()[0, 0]


@pytest.mark.parametrize("length", [0.0, 3.0])
def test_ensemble_wet_frequency_follows_the_probability(length: float) -> None:
    logits = _known_probability()
    members = torch.full((1, M, 1, 24, 32), 2.0)  # every member wet everywhere before the gate
    gated = apply_rain_gate(members, logits, rule="sample", seeds=[list(range(M))], length=length)
    p = torch.sigmoid(logits.double()).numpy()[0, 0]
    frequency = _wet_frequency(gated)
    # Members draw independently, so each pixel's wet count is Binomial(M, p) (spatial correlation or not):
    # 4.5 standard errors over 768 pixels.
    z = (frequency - p) / np.sqrt(p * (1 - p) / M)
    assert np.abs(z).max() < 4.5, np.abs(z).max()
    assert abs(frequency.mean() - p.mean()) < 3 * np.sqrt(0.25 / M)
    # The old rule keeps or removes each pixel in every member alike: frequency 0 or 1, never p.
    old = _wet_frequency(apply_rain_gate(members, logits, rule="threshold"))
    assert set(np.unique(old)) == {0.0, 1.0}
    assert old[:, :16].max() == 0.0  # P(wet) < 0.5 on the left half: no member ever rains there


def test_correlation_length_makes_neighbours_decide_together() -> None:
    def neighbour_agreement(length: float) -> float:
        u = gate_uniforms(list(range(50)), (1, 24, 32), length)
        wet = u < 0.3
        return float((wet[..., 1:] == wet[..., :-1]).double().mean())

    # Independent pixels at P = 0.3 agree with their neighbour with probability 0.3^2 + 0.7^2 = 0.58.
    assert neighbour_agreement(0.0) == pytest.approx(0.58, abs=0.02)
    assert neighbour_agreement(4.0) > 0.85


def test_a_member_is_the_same_alone_and_in_an_ensemble() -> None:
    logits = torch.zeros(2, 1, 24, 32)  # P = 0.5: half the pixels of each member are dry
    members = torch.rand(2, 3, 1, 24, 32, generator=torch.Generator().manual_seed(0)) + 0.5
    ensemble = apply_rain_gate(members, logits, rule="sample", seeds=[[10, 11, 12], [13, 14, 15]], length=2)
    alone = apply_rain_gate(members[1:, 1:2], logits[1:], rule="sample", seeds=[[14]], length=2)
    assert torch.equal(ensemble[1:, 1:2], alone)
    assert not torch.equal(ensemble[:, 0], ensemble[:, 1])  # members draw differently
    with pytest.raises(ValueError, match="needs one seed per member"):
        apply_rain_gate(members, logits, rule="sample", seeds=[[1, 2, 3]])
    assert torch.equal(apply_rain_gate(members, logits, rule="none"), members)
    with pytest.raises(ValueError, match="rule must be one of"):
        apply_rain_gate(members, logits, rule="always")  # type: ignore[arg-type]


def test_physical_members_draw_the_gate_per_member(tiny_spec: Callable[..., ModelSpec]) -> None:
    spec = tiny_spec(use_rain_gate=True, rain_gate_threshold=0.1)
    model = build_model(spec).eval()
    torch.nn.init.constant_(model.rain_gate.out.bias, -0.85)  # P(wet) = 0.3 everywhere
    identity = TransformSet(
        target=[VariableTransform(variable="precip", transform=ZScoreSpec(mean=5.0, std=1.0))],
        dynamic=[],
        static=[],
    )
    cond = Conditioning(torch.randn(1, 3, 16, 24, generator=torch.Generator().manual_seed(3)))
    options = {"num_steps": 2, "sigma_max": 2.0}
    seeds = [list(range(40))]
    sampled = physical_members(
        model, spec, cond, seeds, VariableTransforms(identity), rain_gate="sample", **options
    )
    threshold = physical_members(
        model, spec, cond, seeds, VariableTransforms(identity), rain_gate="threshold", **options
    )
    alone = physical_members(
        model, spec, cond, [[7]], VariableTransforms(identity), rain_gate="sample", **options
    )
    np.testing.assert_array_equal(sampled[:, 7:8], alone)
    # Around z = 5 every member is positive before the gate: wet share 0.3 drawn, none with the old rule.
    assert abs((sampled > 0).mean() - 0.3) < 0.03
    assert (threshold == 0).all()


@pytest.mark.parametrize("length", [0.0, 3.0])
def test_hurdle_wet_frequency_follows_the_probability_whatever_the_diffusion_rains(length: float) -> None:
    # The diffusion members are dry (exact zeros and drizzle below the threshold) on the left third and wet on
    # the rest: "sample" keeps its draw only where they rain, the hurdle rains at P(wet) everywhere.
    logits = _known_probability()
    drizzle = torch.rand(1, M, 1, 24, 32, generator=torch.Generator().manual_seed(1)) * 0.1
    drizzle[..., :4] = 0.0
    members = torch.where(torch.arange(32) < 11, drizzle, 0.5 + drizzle)
    seeds = [list(range(M))]
    hurdle = apply_rain_gate(members, logits, rule="hurdle", seeds=seeds, length=length, wet_threshold=0.1)
    sample = apply_rain_gate(members, logits, rule="sample", seeds=seeds, length=length)
    p = torch.sigmoid(logits.double()).numpy()[0, 0]
    frequency = (hurdle > 0.1).double().mean(dim=1).numpy()[0, 0]
    z = (frequency - p) / np.sqrt(p * (1 - p) / M)
    assert np.abs(z).max() < 4.5, np.abs(z).max()
    assert ((sample > 0.1).double().mean(dim=1)[..., :11] == 0).all()  # the product of both occurrences
    # The same draw: dry pixels agree (exact 0), wet pixels keep the diffusion's value where it rains and the
    # smallest float32 above the threshold where it does not.
    drawn_wet = hurdle > 0
    assert torch.equal(drawn_wet[..., 11:], sample[..., 11:] > 0)
    assert torch.equal(hurdle[..., 11:], sample[..., 11:])
    # Lifted pixels take the member's own wet values (0.5 + drizzle here), or the floor with wet_fill="floor".
    lifted = hurdle[..., :11][drawn_wet[..., :11]]
    assert lifted.min() >= 0.5 and lifted.max() <= 0.6
    floor = apply_rain_gate(members, logits, "hurdle", seeds, length, wet_threshold=0.1, wet_fill="floor")
    assert torch.equal(floor > 0, drawn_wet)
    lifted_floor = floor[..., :11][drawn_wet[..., :11]]
    assert lifted_floor.unique().tolist() == [float(np.nextafter(np.float32(0.1), np.float32(1)))]
    assert (hurdle[~drawn_wet] == 0).all()


def test_hurdle_member_is_the_same_alone_and_needs_the_threshold() -> None:
    logits = torch.zeros(2, 1, 24, 32)
    members = torch.rand(2, 3, 1, 24, 32, generator=torch.Generator().manual_seed(0)) * 0.2
    seeds = [[10, 11, 12], [13, 14, 15]]
    ensemble = apply_rain_gate(members, logits, rule="hurdle", seeds=seeds, length=2, wet_threshold=0.1)
    alone = apply_rain_gate(
        members[1:, 1:2], logits[1:], rule="hurdle", seeds=[[14]], length=2, wet_threshold=0.1
    )
    assert torch.equal(ensemble[1:, 1:2], alone)
    with pytest.raises(ValueError, match="needs the gate's wet_threshold"):
        apply_rain_gate(members, logits, rule="hurdle", seeds=seeds)


def test_physical_members_hurdle_rains_at_the_gate_probability(tiny_spec: Callable[..., ModelSpec]) -> None:
    spec = tiny_spec(use_rain_gate=True, rain_gate_threshold=0.1)
    model = build_model(spec).eval()
    torch.nn.init.constant_(model.rain_gate.out.bias, -0.85)  # P(wet) = 0.3 everywhere
    # z-scored around -5: every diffusion member is negative (clipped dry) before the gate.
    dry = TransformSet(
        target=[VariableTransform(variable="precip", transform=ZScoreSpec(mean=-5.0, std=1.0))],
        dynamic=[],
        static=[],
    )
    cond = Conditioning(torch.randn(1, 3, 16, 24, generator=torch.Generator().manual_seed(3)))
    options = {"num_steps": 2, "sigma_max": 2.0}
    transforms = VariableTransforms(dry)
    hurdle = physical_members(model, spec, cond, [list(range(40))], transforms, rain_gate="hurdle", **options)
    alone = physical_members(model, spec, cond, [[7]], transforms, rain_gate="hurdle", **options)
    np.testing.assert_array_equal(hurdle[:, 7:8], alone)
    assert abs((hurdle > 0.1).mean() - 0.3) < 0.03
    # The default rule and length are generation's (RainGateSettings), so the inline evaluation matches it.
    settings = RainGateSettings()
    default = physical_members(model, spec, cond, [list(range(40))], transforms, **options)
    explicit = physical_members(
        model,
        spec,
        cond,
        [list(range(40))],
        transforms,
        rain_gate=settings.rule,
        rain_gate_length=settings.length,
        **options,
    )
    np.testing.assert_array_equal(default, explicit)
    assert settings.rule == "hurdle"
