"""Ensemble members in physical units: sample (or predict), invert the target transform, apply the RainGate."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from stride_contracts.checkpoint import ModelSpec
from stride_core.transforms import VariableTransforms
from stride_model.conditioning import Conditioning
from stride_model.rain_gate import apply_rain_gate
from stride_model.sampler import sample_ensemble


@torch.no_grad()
def physical_members(
    model: Any,
    spec: ModelSpec,
    cond: Conditioning,
    seeds: list[list[int]],
    transforms: VariableTransforms,
    **sampler: Any,
) -> NDArray[np.float32]:
    """Members [B, M, C_out, H, W] in physical units; a regression model gives its one prediction (M = 1).

    `sampler` goes to sample_ensemble (num_steps, sigma_max, S_churn, ...). With a RainGate, pixels the gate
    calls dry are exactly 0 in every member: the gate sees only the conditioning, so it is evaluated once.
    """
    if spec.kind == "regression":
        prediction = model(cond)[:, None]
    else:
        prediction = sample_ensemble(model, cond, seeds, spec.out_channels, **sampler)
    members = torch.from_numpy(transforms.inverse_target(prediction.float().cpu().numpy()))
    if spec.use_rain_gate:
        members = apply_rain_gate(members, model.rain_gate_logits(cond).float().cpu())
    return members.numpy().astype(np.float32, copy=False)
