"""RainGate: it learns wetness from the conditioning, its BCE term, and apply_rain_gate on ensembles."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F

from stride_contracts.checkpoint import ModelSpec
from stride_model import Conditioning, EDMLoss, LossOutput, apply_rain_gate, build_model, rain_gate_bce


def _gate_spec(tiny_spec: Callable[..., ModelSpec], **overrides: object) -> ModelSpec:
    return tiny_spec(use_rain_gate=True, rain_gate_threshold=0.1, **overrides)


def _toy(generator: torch.Generator, batch: int) -> tuple[Conditioning, torch.Tensor]:
    """Wet where a smooth input field exceeds a threshold set by the (FiLM) time feature."""
    lr = torch.randn(batch, 2, 4, 6, generator=generator)
    image = torch.cat(
        [
            F.interpolate(lr, size=(16, 24), mode="bicubic", align_corners=False),
            torch.randn(batch, 1, 16, 24, generator=generator),
        ],
        dim=1,
    )
    time_features = torch.rand(batch, 2, generator=generator) * 2 - 1
    wet = (image[:, :1] > 0.6 * time_features[:, :1, None, None]).float()
    return Conditioning(image, time_features=time_features), wet


def test_gate_learns_wetness_from_the_conditioning(tiny_spec: Callable[..., ModelSpec]) -> None:
    model = build_model(_gate_spec(tiny_spec, use_film_doy=True, n_time_features=2))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    data = torch.Generator().manual_seed(0)
    for _ in range(300):
        cond, wet = _toy(data, 8)
        loss = rain_gate_bce(model.rain_gate_logits(cond), wet).mean()  # type: ignore[operator]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    cond, wet = _toy(torch.Generator().manual_seed(99), 64)
    with torch.no_grad():
        predicted_wet = model.rain_gate_logits(cond) >= 0  # type: ignore[operator]
    accuracy = (predicted_wet == wet.bool()).float().mean().item()
    base_rate = max(wet.mean().item(), 1 - wet.mean().item())
    # Measured 0.985 after 300 steps. Always answering the majority class scores the base rate (0.50); the
    # same gate without the time feature (no FiLM) reaches 0.89, so > 0.95 needs the FiLM path too.
    assert accuracy > 0.95, (accuracy, base_rate)
    assert accuracy > base_rate + 0.4, (accuracy, base_rate)


def test_untrained_gate_keeps_every_pixel(tiny_spec: Callable[..., ModelSpec]) -> None:
    model = build_model(_gate_spec(tiny_spec))
    cond = Conditioning(torch.randn(2, 3, 16, 24))
    logits = model.rain_gate_logits(cond)  # type: ignore[operator]
    assert torch.equal(logits, torch.zeros(2, 1, 16, 24))
    members = torch.rand(2, 4, 1, 16, 24) + 0.5
    assert torch.equal(apply_rain_gate(members, logits), members)


def test_apply_rain_gate_zeroes_exactly_the_dry_pixels() -> None:
    generator = torch.Generator().manual_seed(1)
    members = torch.rand(3, 5, 2, 8, 8, generator=generator) * 10 + 0.01  # every member wet everywhere
    logits = torch.randn(3, 2, 8, 8, generator=generator)
    logits[0, 0, 0, :3] = torch.tensor([0.0, -1e-6, 1e-6])  # P = 0.5 is kept; just below is dry
    gated = apply_rain_gate(members, logits)
    dry = (torch.sigmoid(logits) < 0.5)[:, None].expand_as(members)
    assert torch.equal(gated[dry], torch.zeros(int(dry.sum())))
    assert torch.equal(gated[~dry], members[~dry])
    assert gated[0, :, 0, 0, :3].tolist() == [[m[0], 0.0, m[2]] for m in members[0, :, 0, 0, :3].tolist()]
    with pytest.raises(ValueError, match=r"logits \[3, 1, 8, 8\] do not match members"):
        apply_rain_gate(members, logits[:, :1])


def test_gate_term_is_the_masked_bce_next_to_the_edm_loss(tiny_spec: Callable[..., ModelSpec]) -> None:
    spec = _gate_spec(tiny_spec)
    model = build_model(spec)
    for parameter in model.parameters():
        parameter.data.normal_(0, 0.1)
    generator = torch.Generator().manual_seed(2)
    cond = Conditioning(torch.randn(3, 3, 16, 24, generator=generator))
    target = torch.randn(3, 1, 16, 24, generator=generator)
    mask = torch.rand(3, 1, 16, 24, generator=generator) > 0.3
    wet = torch.where(mask, (target > 0).float(), 7.0)  # junk at invalid pixels must not count
    edm: LossOutput = EDMLoss()(model, target, cond, mask, torch.Generator().manual_seed(3))
    logits = model.rain_gate_logits(cond)  # type: ignore[operator]
    out = edm.with_rain_gate(logits, wet, mask, weight=0.3)

    bce = F.binary_cross_entropy_with_logits(logits, wet, reduction="none")
    assert out.gate_loss is not None and out.gate_per_sample is not None
    torch.testing.assert_close(out.gate_loss, bce[mask].mean())
    torch.testing.assert_close(out.loss, edm.loss + 0.3 * bce[mask].mean())
    torch.testing.assert_close(out.per_sample, edm.per_sample)  # the EDM term per sample, for logging
    per_sample = torch.stack([bce[b][mask[b]].mean() for b in range(3)])
    torch.testing.assert_close(out.gate_per_sample, per_sample)
    torch.testing.assert_close(out.objective_per_sample, edm.per_sample + 0.3 * per_sample)


def test_regression_kind_has_the_same_gate(tiny_spec: Callable[..., ModelSpec]) -> None:
    spec = _gate_spec(tiny_spec, kind="regression")
    model = build_model(spec)
    for parameter in model.parameters():
        parameter.data.normal_(0, 0.1)
    cond = Conditioning(torch.randn(2, 3, 16, 24))
    prediction, logits = model(cond, with_rain_gate=True)
    assert prediction.shape == logits.shape == (2, 1, 16, 24)
    torch.testing.assert_close(logits, model.rain_gate_logits(cond))  # type: ignore[operator]
    torch.testing.assert_close(prediction, model(cond))
