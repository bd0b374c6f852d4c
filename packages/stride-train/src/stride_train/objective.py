"""The training objective on one process's share of a global batch, with the batch's noise drawn once for all."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from stride_contracts.checkpoint import ModelSpec
from stride_model import (
    Conditioning,
    EDMLoss,
    LossOutput,
    assemble_conditioning,
    masked_mean,
    regression_output,
)

Denoiser = Callable[[Tensor, Tensor, Conditioning], Tensor]


@dataclass(frozen=True)
class EDMDraws:
    """EDMLoss's random draws for a batch: ln(sigma) normals [B, 1, 1, 1] and unit noise [B, C, H, W]."""

    rnd_normal: Tensor
    noise: Tensor

    def __getitem__(self, part: slice) -> EDMDraws:
        return EDMDraws(self.rnd_normal[part], self.noise[part])

    def __len__(self) -> int:
        return int(self.rnd_normal.shape[0])

    @staticmethod
    def cat(parts: list[EDMDraws]) -> EDMDraws:
        return EDMDraws(torch.cat([p.rnd_normal for p in parts]), torch.cat([p.noise for p in parts]))


def draw_edm(generator: torch.Generator, batch: int, sample_shape: tuple[int, ...]) -> EDMDraws:
    """Draw as stride_model.EDMLoss does (same shapes, order and device), so one process trains exactly as
    EDMLoss(generator=...) would; under DDP every rank draws the global batch and keeps its own share."""
    device = generator.device
    rnd_normal = torch.randn((batch, 1, 1, 1), generator=generator, device=device)
    noise = torch.randn((batch, *sample_shape), generator=generator, device=device)
    return EDMDraws(rnd_normal, noise)


@dataclass(frozen=True)
class _Noised:
    """A batch's clean target y (0 at invalid pixels), its noise levels, loss weights and noisy input."""

    y: Tensor
    sigma: Tensor
    weight: Tensor
    noisy: Tensor


def _noise(loss_fn: EDMLoss, target: Tensor, mask: Tensor, draws: EDMDraws) -> _Noised:
    y = torch.where(mask, target, torch.zeros_like(target))
    sigma = (draws.rnd_normal.to(y.device) * loss_fn.P_std + loss_fn.P_mean).exp()
    weight = (sigma**2 + loss_fn.sigma_data**2) / (sigma * loss_fn.sigma_data) ** 2
    n = draws.noise.to(y.device) * sigma
    return _Noised(y, sigma, weight, y + n)


def _edm_output(noised: _Noised, D_yn: Tensor, mask: Tensor) -> LossOutput:
    loss, per_sample = masked_mean(noised.weight * (D_yn - noised.y) ** 2, mask)
    return LossOutput(loss=loss, per_sample=per_sample, sigma=noised.sigma.flatten())


def edm_loss(
    loss_fn: EDMLoss, denoiser: Denoiser, target: Tensor, cond: Conditioning, mask: Tensor, draws: EDMDraws
) -> LossOutput:
    """stride_model.EDMLoss with its draws given: EDM eq. 2 with ln(sigma) ~ N(P_mean, P_std^2), lambda = 1/c_out^2.

    A test holds it equal to EDMLoss; mask (bool, True = valid) drops missing target pixels.
    """
    noised = _noise(loss_fn, target, mask, draws)
    return _edm_output(noised, denoiser(noised.noisy, noised.sigma.flatten(), cond), mask)


def model_loss(
    network: Any,
    spec: ModelSpec,
    loss_fn: EDMLoss,
    batch: dict[str, Any],
    draws: EDMDraws | None,
    memory_format: torch.memory_format = torch.contiguous_format,
    *,
    rain_gate_weight: float = 1.0,
) -> LossOutput:
    """The loss of a contract-A batch: EDM with the given draws, or the regression model's masked MSE.

    With spec.use_rain_gate the same forward pass also returns the RainGate's logits, and the loss adds
    rain_gate_weight x their BCE against batch['wet'] over the valid pixels (LossOutput.gate_loss); one
    forward keeps every parameter in DDP's graph every step.
    """
    cond = assemble_conditioning(batch, spec).contiguous(memory_format)
    target = batch["target"].contiguous(memory_format=memory_format)
    mask = batch["mask"]
    gate = spec.use_rain_gate
    wet = None
    if gate:
        wet = batch.get("wet")
        if wet is None:
            raise ValueError(
                "batch has no 'wet', which ModelSpec.use_rain_gate=True needs; give the adapter the rain "
                f"threshold ({spec.rain_gate_threshold}) or turn the RainGate off"
            )
    logits = None
    if spec.kind == "regression":
        if gate:
            prediction, logits = network(cond, with_rain_gate=True)
        else:
            prediction = network(cond)
        out = regression_output(prediction, target, mask)
    else:
        if draws is None:
            raise ValueError("model_loss: an EDM model needs its noise draws")
        noised = _noise(loss_fn, target, mask, draws)
        sigma = noised.sigma.flatten()
        if gate:
            D_yn, logits = network(noised.noisy, sigma, cond, with_rain_gate=True)
        else:
            D_yn = network(noised.noisy, sigma, cond)
        out = _edm_output(noised, D_yn, mask)
    if logits is not None and wet is not None:
        out = out.with_rain_gate(logits, wet, mask, rain_gate_weight)
    return out


def global_mean_term(out: LossOutput, mask: Tensor, global_valid: int, world_size: int) -> Tensor:
    """This rank's term of the masked mean over the whole global batch (RainGate term included).

    DDP averages gradients over ranks, so each rank's term is world_size * (its sum) / (global valid count):
    their mean is the global masked mean, and a DDP step equals the single-process step on the same batch.
    The gate's BCE is averaged over the same valid pixels, so it shares the scale.
    """
    counts = mask.flatten(1).sum(dim=1)
    return (out.objective_per_sample * counts).sum() * (world_size / max(global_valid, 1))
