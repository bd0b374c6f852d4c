"""The training objective on one process's share of a global batch, with the batch's noise drawn once for all."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from stride_contracts.checkpoint import ModelSpec
from stride_model import EDMLoss, LossOutput, assemble_condition, regression_loss

Denoiser = Callable[[Tensor, Tensor, Tensor], Tensor]


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


def edm_loss(
    loss_fn: EDMLoss, denoiser: Denoiser, target: Tensor, condition: Tensor, mask: Tensor, draws: EDMDraws
) -> LossOutput:
    """stride_model.EDMLoss with its draws given: EDM eq. 2 with ln(sigma) ~ N(P_mean, P_std^2), lambda = 1/c_out^2.

    A test holds it equal to EDMLoss; mask (bool, True = valid) drops missing target pixels.
    """
    y = torch.where(mask, target, torch.zeros_like(target))
    sigma = (draws.rnd_normal.to(y.device) * loss_fn.P_std + loss_fn.P_mean).exp()
    weight = (sigma**2 + loss_fn.sigma_data**2) / (sigma * loss_fn.sigma_data) ** 2
    n = draws.noise.to(y.device) * sigma
    D_yn = denoiser(y + n, sigma.flatten(), condition)
    per_element = torch.where(mask, weight * (D_yn - y) ** 2, torch.zeros_like(y))
    sums = per_element.flatten(1).sum(dim=1)
    counts = mask.flatten(1).sum(dim=1)
    loss = sums.sum() / counts.sum().clamp(min=1)
    return LossOutput(loss=loss, per_sample=sums / counts.clamp(min=1), sigma=sigma.flatten())


def model_loss(
    network: Any,
    spec: ModelSpec,
    loss_fn: EDMLoss,
    batch: dict[str, Any],
    draws: EDMDraws | None,
    memory_format: torch.memory_format = torch.contiguous_format,
) -> LossOutput:
    """The loss of a contract-A batch: EDM with the given draws, or the regression model's masked MSE."""
    condition = assemble_condition(batch["cond_dynamic"], batch["cond_static"], spec)
    condition = condition.contiguous(memory_format=memory_format)
    target = batch["target"].contiguous(memory_format=memory_format)
    if spec.kind == "regression":
        return regression_loss(network, target, condition, batch["mask"])
    if draws is None:
        raise ValueError("model_loss: an EDM model needs its noise draws")
    return edm_loss(loss_fn, network, target, condition, batch["mask"], draws)


def global_mean_term(out: LossOutput, mask: Tensor, global_valid: int, world_size: int) -> Tensor:
    """This rank's term of the masked mean over the whole global batch.

    DDP averages gradients over ranks, so each rank's term is world_size * (its sum) / (global valid count):
    their mean is the global masked mean, and a DDP step equals the single-process step on the same batch.
    """
    counts = mask.flatten(1).sum(dim=1)
    return (out.per_sample * counts).sum() * (world_size / max(global_valid, 1))
