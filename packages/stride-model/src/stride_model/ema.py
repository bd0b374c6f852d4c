"""Exponential moving average of model weights with EDM's half-life and ramp-up rule."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, Generic, TypeVar, cast

import torch
from torch import nn

ModuleT = TypeVar("ModuleT", bound=nn.Module)


def _unwrap(model: nn.Module) -> nn.Module:
    # DistributedDataParallel and torch.compile wrap the network; the EMA tracks the bare network's names.
    inner = getattr(model, "module", None) or getattr(model, "_orig_mod", None)
    return inner if isinstance(inner, nn.Module) else model


def ema_beta(
    batch_size: int, samples_seen: int, halflife_samples: float, rampup_ratio: float | None
) -> float:
    """Decay per update so the average halves its memory every halflife_samples (EDM training_loop.py)."""
    ema_nimg = halflife_samples
    if rampup_ratio:
        # Early in training the average may not remember further back than a fraction of what was seen.
        ema_nimg = min(halflife_samples, samples_seen * rampup_ratio)
    return float(0.5 ** (batch_size / max(ema_nimg, 1e-8)))


class EMA(Generic[ModuleT]):
    """A frozen eval-mode copy of a model (`.model`) whose weights trail the trained ones."""

    def __init__(
        self, model: ModuleT, halflife_samples: float = 500_000, rampup_ratio: float | None = 0.05
    ) -> None:
        if halflife_samples <= 0:
            raise ValueError(f"EMA halflife_samples must be > 0, got {halflife_samples}")
        if rampup_ratio is not None and rampup_ratio < 0:
            raise ValueError(f"EMA rampup_ratio must be >= 0 or None, got {rampup_ratio}")
        self.halflife_samples = halflife_samples
        self.rampup_ratio = rampup_ratio
        self.model: ModuleT = cast(ModuleT, copy.deepcopy(_unwrap(model)).eval().requires_grad_(False))

    @torch.no_grad()
    def update(self, model: nn.Module, batch_size: int, samples_seen: int) -> float:
        """Blend in the current weights after a step; samples_seen counts samples including this batch."""
        beta = ema_beta(batch_size, samples_seen, self.halflife_samples, self.rampup_ratio)
        source = _unwrap(model)
        ema_params = dict(self.model.named_parameters())
        for name, param in source.named_parameters():
            ema_params[name].copy_(param.detach().lerp(ema_params[name], beta))
        # Buffers (e.g. running statistics) are not averaged, only mirrored, as in EDM.
        ema_buffers = dict(self.model.named_buffers())
        for name, buffer in source.named_buffers():
            ema_buffers[name].copy_(buffer)
        return beta

    def state_dict(self) -> dict[str, Any]:
        """The averaged weights, loadable into a bare model of the same architecture."""
        return self.model.state_dict()

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore averaged weights saved by state_dict() (e.g. when resuming training)."""
        self.model.load_state_dict(state_dict)

    @torch.no_grad()
    def copy_to(self, model: nn.Module) -> None:
        """Overwrite model's weights with the averaged ones."""
        _unwrap(model).load_state_dict(self.model.state_dict())
