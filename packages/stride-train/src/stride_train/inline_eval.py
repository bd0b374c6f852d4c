"""Inline evaluation: a small ensemble on fixed validation dates, scored in physical units during training.

It only observes. It samples the EMA weights with its own per-member seeds (no shared generator), and its
scores are logged but never used for checkpoint selection, which stays with the validation loss.
"""

from __future__ import annotations

import numpy as np
import torch

from stride_contracts.checkpoint import ModelSpec
from stride_core.metrics import crps_ensemble_fair, spread_skill_ratio
from stride_core.transforms import VariableTransforms
from stride_model import assemble_condition, sample_ensemble
from stride_train.config import InlineEvalConfig
from stride_train.data import ModelSpaceSplit


class InlineEvaluator:
    """Fair CRPS and spread-skill of the EMA model's ensemble on fixed validation dates."""

    def __init__(
        self,
        data: ModelSpaceSplit,
        spec: ModelSpec,
        transforms: VariableTransforms,
        config: InlineEvalConfig,
        device: torch.device,
    ) -> None:
        self.spec, self.transforms, self.config, self.device = spec, transforms, config, device
        self.index = np.unique(
            np.linspace(0, len(data) - 1, min(config.dates, len(data))).round().astype(int)
        )
        batch = data.batch(self.index, device)
        self.condition = assemble_condition(batch["cond_dynamic"], batch["cond_static"], spec)
        self.truth = data.arrays.target[self.index]  # physical units, NaN where invalid
        self.variables = [entry.variable for entry in transforms.spec.target]
        self.seeds = [
            [config.seed + i * config.members + k for k in range(config.members)]
            for i in range(len(self.index))
        ]

    def due(self, step: int) -> bool:
        return self.config.every is not None and step % self.config.every == 0

    @torch.no_grad()
    def evaluate(self, model: torch.nn.Module) -> dict[str, float]:
        if self.spec.kind == "regression":
            prediction = model(self.condition)[:, None]
        else:
            prediction = sample_ensemble(
                model, self.condition, self.seeds, self.spec.out_channels, num_steps=self.config.sampler_steps
            )
        ensemble = self.transforms.inverse_target(prediction.float().cpu().numpy())
        scores = {}
        for channel, name in enumerate(self.variables):
            members, truth = ensemble[:, :, channel], self.truth[:, channel]
            scores[f"inline.{name}.crps"] = float(
                np.nanmean(crps_ensemble_fair(members, truth, member_axis=1))
            )
            if members.shape[1] > 1:
                scores[f"inline.{name}.spread_skill"] = float(
                    spread_skill_ratio(members, truth, member_axis=1)
                )
        return scores
