"""EDM training loss (Karras et al. 2022, Sec. 5) and a masked MSE for the regression model."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from stride_model.conditioning import Conditioning
from stride_model.rain_gate import rain_gate_bce

Denoiser = Callable[[Tensor, Tensor, Conditioning], Tensor]


@dataclass(frozen=True)
class LossOutput:
    """Scalar loss to backpropagate, plus per-sample losses and their noise levels for logging.

    loss is the masked mean of the EDM (or MSE) term plus gate_weight times the RainGate's masked-mean BCE
    (gate_loss) when the model has a gate. per_sample holds the EDM (or MSE) term only, per sample;
    gate_per_sample the unweighted BCE per sample.
    """

    loss: Tensor
    per_sample: Tensor
    sigma: Tensor
    gate_loss: Tensor | None = None
    gate_per_sample: Tensor | None = None
    gate_weight: float = 0.0

    @property
    def objective_per_sample(self) -> Tensor:
        """Per sample, the term `loss` averages: per_sample + gate_weight * gate_per_sample."""
        if self.gate_per_sample is None:
            return self.per_sample
        return self.per_sample + self.gate_weight * self.gate_per_sample

    def with_rain_gate(self, logits: Tensor, wet: Tensor, mask: Tensor | None, weight: float) -> LossOutput:
        """This loss plus weight x the RainGate's BCE of logits against wet, over the same valid pixels."""
        valid = _valid_mask(wet, mask)
        gate_loss, gate_per_sample = masked_mean(rain_gate_bce(logits, wet), valid)
        return LossOutput(
            loss=self.loss + weight * gate_loss,
            per_sample=self.per_sample,
            sigma=self.sigma,
            gate_loss=gate_loss,
            gate_per_sample=gate_per_sample,
            gate_weight=weight,
        )


def _valid_mask(target: Tensor, mask: Tensor | None) -> Tensor:
    if mask is None:
        return torch.ones_like(target, dtype=torch.bool)
    if mask.shape != target.shape:
        raise ValueError(f"mask: expected the target's shape {list(target.shape)}, got {list(mask.shape)}")
    if mask.dtype != torch.bool:
        raise ValueError(f"mask: expected dtype torch.bool (True = valid), got {mask.dtype}")
    return mask.to(target.device)


def masked_mean(per_element: Tensor, valid: Tensor) -> tuple[Tensor, Tensor]:
    """Mean over valid elements, overall and per sample; a sample with no valid element scores 0."""
    # where() rather than multiply: 0 * inf (a wild prediction at an invalid pixel) would still be NaN.
    per_element = torch.where(valid, per_element, torch.zeros_like(per_element))
    sums = per_element.flatten(1).sum(dim=1)
    counts = valid.flatten(1).sum(dim=1)
    per_sample = sums / counts.clamp(min=1)
    loss = sums.sum() / counts.sum().clamp(min=1)
    return loss, per_sample


def _randn(shape: tuple[int, ...], like: Tensor, generator: torch.Generator | None) -> Tensor:
    # A generator lives on one device; draw there and move, so a CPU generator also drives CUDA training.
    device = generator.device if generator is not None else like.device
    return torch.randn(shape, generator=generator, device=device, dtype=like.dtype).to(like.device)


class EDMLoss:
    """EDM loss, eq. 2 with the Sec. 5 choices: ln(sigma) ~ N(P_mean, P_std^2), lambda = 1/c_out^2."""

    def __init__(self, P_mean: float = -1.2, P_std: float = 1.2, sigma_data: float = 1.0) -> None:
        self.P_mean = P_mean
        self.P_std = P_std
        self.sigma_data = sigma_data

    def __call__(
        self,
        denoiser: Denoiser,
        target: Tensor,
        cond: Conditioning,
        mask: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> LossOutput:
        """Loss of denoiser(target + n, sigma, cond); mask (bool, True = valid) drops missing pixels.

        Without a mask every element counts, so a NaN target gives a NaN loss rather than a silent skip.
        """
        valid = _valid_mask(target, mask)
        # Invalid pixels (e.g. NaN over sea) become 0 so NaN never enters the network.
        y = torch.where(valid, target, torch.zeros_like(target))
        batch = target.shape[0]
        rnd_normal = _randn((batch, 1, 1, 1), y, generator)
        sigma = (rnd_normal * self.P_std + self.P_mean).exp()
        weight = (sigma**2 + self.sigma_data**2) / (sigma * self.sigma_data) ** 2
        n = _randn(tuple(y.shape), y, generator) * sigma
        D_yn = denoiser(y + n, sigma.flatten(), cond)
        loss, per_sample = masked_mean(weight * (D_yn - y) ** 2, valid)
        return LossOutput(loss=loss, per_sample=per_sample, sigma=sigma.flatten())


def regression_loss(
    model: Callable[[Conditioning], Tensor],
    target: Tensor,
    cond: Conditioning,
    mask: Tensor | None = None,
) -> LossOutput:
    """Masked mean squared error of model(cond); sigma is reported as zeros."""
    return regression_output(model(cond), target, mask)


def regression_output(prediction: Tensor, target: Tensor, mask: Tensor | None = None) -> LossOutput:
    """Masked mean squared error of a regression model's prediction; sigma is reported as zeros."""
    valid = _valid_mask(target, mask)
    y = torch.where(valid, target, torch.zeros_like(target))
    loss, per_sample = masked_mean((prediction - y) ** 2, valid)
    return LossOutput(loss=loss, per_sample=per_sample, sigma=target.new_zeros(target.shape[0]))
