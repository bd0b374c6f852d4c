"""Deterministic family: RMSE, MAE and bias of the point forecast (ensemble mean) and of the PMM."""

from __future__ import annotations

import numpy as np

from stride_contracts import MetricRow
from stride_core.calendars import iso
from stride_core.metrics import bias, mae, rmse
from stride_eval.families.base import Family, finite, no_plot
from stride_eval.inputs import EvalInputs

NAME = "deterministic"
SCORES = {"rmse": rmse, "mae": mae, "bias": bias}


def compute(inputs: EvalInputs) -> list[MetricRow]:
    rows: list[MetricRow] = []
    for model, prediction in inputs.predictions.items():
        fields = {"mean": prediction.point}
        if prediction.pmm is not None:
            fields["pmm"] = prediction.pmm
        for which, field in fields.items():
            for name, score in SCORES.items():
                value = float(score(field, inputs.truth))
                if finite(value):
                    rows.append(inputs.row(model, f"{name}_{which}", NAME, value))
        if inputs.per_date:
            per_date = np.asarray(rmse(prediction.point, inputs.truth, axis=(1, 2)))
            for time, value in zip(inputs.times, per_date, strict=True):
                if np.isfinite(value):
                    rows.append(inputs.row(model, "rmse_mean", NAME, value, date=iso(time)))
    return rows


FAMILY = Family(NAME, compute, no_plot)  # the spatial family draws the maps of these scores
compute_and_plot = FAMILY.compute_and_plot
