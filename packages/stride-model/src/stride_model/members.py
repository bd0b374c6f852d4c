"""Ensemble members in physical units: sample (or predict), invert the target transform, apply the RainGate."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from stride_contracts.checkpoint import ModelSpec
from stride_core.transforms import VariableTransforms
from stride_model.conditioning import Conditioning
from stride_model.rain_gate import (
    DEFAULT_GATE_LENGTH,
    DEFAULT_GATE_RULE,
    DEFAULT_WET_FILL,
    FillTally,
    RainGateRule,
    WetFill,
    apply_rain_gate,
)
from stride_model.sampler import sample_ensemble
from stride_model.sampling import predict


@torch.no_grad()
def physical_members(
    model: Any,
    spec: ModelSpec,
    cond: Conditioning,
    seeds: list[list[int]],
    transforms: VariableTransforms,
    rain_gate: RainGateRule = DEFAULT_GATE_RULE,
    rain_gate_length: float = DEFAULT_GATE_LENGTH,
    wet_fill: WetFill = DEFAULT_WET_FILL,
    fill_tally: FillTally | None = None,
    **sampler: Any,
) -> NDArray[np.float32]:
    """Members [B, M, C_out, H, W] in physical units; a regression model gives its one prediction (M = 1).

    `sampler` goes to sample_ensemble (num_steps, sigma_max, S_churn, ...). With a RainGate, pixels the gate
    calls dry are exactly 0: with "threshold" where P(wet) < 0.5, in every member; with "sample" and "hurdle"
    (the default, as in stride-generate, so the inline evaluation scores what generation emits) each member
    draws them from P(wet) with a generator of its own seed (correlation length rain_gate_length HR pixels),
    so member k depends on seeds[b][k] alone, and "hurdle" lifts the drawn-wet pixels to at least the gate's
    wet threshold (spec.rain_gate_threshold), the lifted pixels taking the member's own wet intensities
    (wet_fill, rain_gate.fill_lifted; fill_tally counts them); "none" keeps the members as sampled. The gate sees only the
    conditioning, so its probabilities are evaluated once per date.
    """
    tiling = sampler.get("tiling")  # a domain larger than the patch: the network sees tiles only
    if spec.kind == "regression":
        prediction = predict(model, cond, tiling)[:, None]
    else:
        prediction = sample_ensemble(model, cond, seeds, spec.out_channels, **sampler)
    members = torch.from_numpy(transforms.inverse_target(prediction.float().cpu().numpy()))
    if spec.use_rain_gate:
        # A regression model has one member and no member seeds of its own: it keeps the calibrated-by-
        # construction threshold rule unless asked otherwise with seeds that match.
        rule: RainGateRule = "threshold" if spec.kind == "regression" else rain_gate
        gated = apply_rain_gate(
            members,
            predict(model.rain_gate_logits, cond, tiling).float().cpu(),
            rule=rule,
            seeds=seeds,
            length=rain_gate_length,
            wet_threshold=spec.rain_gate_threshold,
            wet_fill=wet_fill,
        )
        if fill_tally is not None and rule == "hurdle" and spec.rain_gate_threshold is not None:
            fill_tally.add(members, gated, spec.rain_gate_threshold)
        members = gated
    return members.numpy().astype(np.float32, copy=False)
