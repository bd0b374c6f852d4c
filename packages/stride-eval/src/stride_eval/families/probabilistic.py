"""Probabilistic family: fair CRPS (any model; a deterministic one scores its MAE) and spread-skill."""

from __future__ import annotations

import numpy as np

from stride_contracts import MetricRow
from stride_core.metrics import crps_ensemble_fair, spread_skill_ratio
from stride_eval.inputs import EvalInputs

FAMILY = "probabilistic"


def compute(inputs: EvalInputs) -> list[MetricRow]:
    rows: list[MetricRow] = []
    for model, prediction in inputs.predictions.items():
        ensemble = prediction.members if prediction.members is not None else prediction.point[:, None]
        crps = crps_ensemble_fair(ensemble, inputs.truth, member_axis=1)  # [time, H, W], NaN where truth is
        rows.append(inputs.row(model, "crps", FAMILY, float(np.nanmean(crps))))
        if inputs.per_date:
            for time, value in zip(inputs.times, np.nanmean(crps, axis=(1, 2)), strict=True):
                if np.isfinite(value):
                    rows.append(inputs.row(model, "crps", FAMILY, value, date=time.to_pydatetime()))
        if prediction.members is not None and prediction.members.shape[1] > 1:
            ratio = spread_skill_ratio(prediction.members, inputs.truth, member_axis=1)
            rows.append(inputs.row(model, "spread_skill", FAMILY, float(ratio), units="1"))
    return rows
