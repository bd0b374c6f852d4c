"""Validation loss of the EMA weights, and the best EMA weights it selects.

The loss depends only on the weights: fixed dates, each with noise from its own seed, float32, no shared
generator. Batch size, world size, training precision and anything run beside it (inline evaluation) leave
it unchanged, so checkpoint selection does too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from stride_contracts.checkpoint import ModelSpec
from stride_model import EDMLoss
from stride_model.adapter import DownscalingDataset, FixedKeySampler, batch_to, collate_samples
from stride_train.distributed import World
from stride_train.objective import EDMDraws, draw_edm, model_loss


class Validator:
    """Mean per-sample loss on `samples` evenly spaced validation dates, shared out over the ranks.

    Date i is always the same sample: the adapter's key (i, i) fixes its patch, and its noise comes from its
    own generator, so the loss measures the weights and nothing else. It is the EDM (or MSE) loss alone: a
    RainGate's BCE is logged beside it, not mixed into checkpoint selection.
    """

    def __init__(
        self,
        data: DownscalingDataset,
        spec: ModelSpec,
        loss_fn: EDMLoss,
        *,
        samples: int,
        batch_size: int,
        seed: int,
        world: World | None = None,
    ) -> None:
        self.data, self.spec, self.loss_fn, self.seed = data, spec, loss_fn, seed
        self.world = world or World()
        dates = np.unique(np.linspace(0, len(data) - 1, min(samples, len(data))).round().astype(int))
        self.keys = FixedKeySampler(
            [(int(date), int(date)) for date in dates],
            max(1, batch_size // self.world.world_size),
            rank=self.world.rank,
            world_size=self.world.world_size,
        )

    def draws(self, batch: dict[str, Any]) -> EDMDraws | None:
        """Noise for each date from its own CPU generator, the same on every device and in every batch."""
        if self.spec.kind != "edm":
            return None
        shape = tuple(batch["target"].shape[1:])
        dates = [key[0] for key in batch["meta"]["keys"]]
        return EDMDraws.cat(
            [draw_edm(torch.Generator().manual_seed(self.seed + 1 + date), 1, shape) for date in dates]
        )

    @torch.no_grad()
    def loss(self, model: nn.Module) -> float:
        device = next(model.parameters()).device
        total = torch.zeros(2, dtype=torch.float64, device=device)
        for keys in self.keys:
            batch = batch_to(collate_samples([self.data[key] for key in keys]), device)
            out = model_loss(model, self.spec, self.loss_fn, batch, self.draws(batch))
            total[0] += out.per_sample.to(torch.float64).sum()
            total[1] += len(keys)
        total = self.world.sum(total)
        return float(total[0] / total[1])


@dataclass
class BestWeights:
    """The EMA weights at the lowest validation loss so far, copied to the CPU (on rank 0 only)."""

    keep_weights: bool = True
    step: int | None = None
    val_loss: float = math.inf
    ema_state: dict[str, Tensor] | None = field(default=None, repr=False)

    def offer(self, step: int, val_loss: float, ema_model: nn.Module) -> bool:
        """Take these weights if their loss is strictly lower (a NaN never is); True when taken."""
        if not val_loss < self.val_loss:
            return False
        self.step, self.val_loss = step, val_loss
        if self.keep_weights:
            self.ema_state = {k: v.detach().to("cpu", copy=True) for k, v in ema_model.state_dict().items()}
        return True

    @property
    def found(self) -> bool:
        return self.step is not None

    def state_dict(self) -> dict[str, Any]:
        return {"step": self.step, "val_loss": self.val_loss, "ema": self.ema_state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step, self.val_loss = state["step"], float(state["val_loss"])
        self.ema_state = state["ema"] if self.keep_weights else None
