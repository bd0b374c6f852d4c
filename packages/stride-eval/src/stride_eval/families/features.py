"""Features family: consistency of the ensemble with the LR input it was conditioned on.

Each member is coarsened conservatively (area-weighted block means, as stride-data made the LR input when
`lr_method` is conservative_coarsening) to the LR grid and compared with the LR conditioning of the same
variable: `lr_rmse`, `lr_bias` per member, averaged over members, and the truth's own (the floor: zero up to
the masking of invalid cells when the LR input was coarsened from this truth; the LR source's mismatch when
it was regridded from another source). Only when the target variable is among the LR inputs.

Perturbation response: a store compared with --compare whose LR conditioning of the variable differs from
the evaluated store's (generated from perturbed inputs, e.g. +2 K, as stride-train's inline diagnostic
does) gets `perturbation_imposed` (mean LR change), `perturbation_response` (mean change of the ensemble
mean over the valid HR pixels) and `perturbation_ratio` = response / imposed, with the evaluated store as
`reference`. Near 1 the model carries the LR change through; near 0 it ignores its input and would erase
a climate-change signal. Same seeds in both stores (common random numbers) make the sampling noise cancel.
"""

from __future__ import annotations

import numpy as np

from stride_contracts import MetricRow
from stride_core.grid import coarsen_conservative
from stride_core.metrics import bias, rmse
from stride_eval.families.base import Family, finite, no_plot
from stride_eval.inputs import EvalInputs

NAME = "features"
MIN_VALID_FRACTION = 0.5


def compute(inputs: EvalInputs) -> list[MetricRow]:
    rows = perturbation_rows(inputs)
    if inputs.lr is None or inputs.factor < 1:
        return rows
    lr = inputs.lr.astype(np.float64)
    coarse_truth = coarsen_conservative(
        inputs.truth, inputs.factor, inputs.weights, min_valid_fraction=MIN_VALID_FRACTION
    )
    valid = np.isfinite(coarse_truth) & np.isfinite(lr)
    reference = np.where(valid, lr, np.nan)
    candidates = {"truth": coarse_truth[:, None]}
    for model, prediction in inputs.predictions.items():
        candidates[model] = coarsen_conservative(
            prediction.ensemble, inputs.factor, inputs.weights, min_valid_fraction=MIN_VALID_FRACTION
        )
    for model, coarse in candidates.items():
        own = inputs.lr_by_model.get(model)  # a store from perturbed inputs is held to its own input
        target = reference if own is None else np.where(valid, own.astype(np.float64), np.nan)
        per_member = [
            (float(rmse(coarse[:, k], target)), float(bias(coarse[:, k], target)))
            for k in range(coarse.shape[1])
        ]
        for metric, value in (
            ("lr_rmse", np.mean([p[0] for p in per_member])),
            ("lr_bias", np.mean([p[1] for p in per_member])),
        ):
            if finite(float(value)):
                rows.append(inputs.row(model, metric, NAME, float(value)))
    return rows


PERTURBED_RTOL = 1e-6
"""An LR input counts as perturbed where it differs from the evaluated one by more than this (relative)."""


def perturbation_rows(inputs: EvalInputs) -> list[MetricRow]:
    reference = inputs.evaluated
    if reference is None or reference not in inputs.lr_by_model or reference not in inputs.predictions:
        return []
    base_lr = inputs.lr_by_model[reference].astype(np.float64)
    base = inputs.predictions[reference].point.astype(np.float64)
    scale = float(np.nanmax(np.abs(base_lr))) if np.isfinite(base_lr).any() else 0.0
    rows: list[MetricRow] = []
    for model, lr in inputs.lr_by_model.items():
        if model == reference or model not in inputs.predictions or lr.shape != base_lr.shape:
            continue
        change = lr.astype(np.float64) - base_lr
        if not np.nanmax(np.abs(change), initial=0.0) > PERTURBED_RTOL * max(scale, 1.0):
            continue  # the same inputs: a model comparison, not a perturbation
        imposed = float(np.nanmean(change))
        response = float(np.nanmean(inputs.predictions[model].point.astype(np.float64) - base))
        values: list[tuple[str, float, str | None]] = [
            ("perturbation_imposed", imposed, None),
            ("perturbation_response", response, None),
        ]
        if imposed != 0:
            values.append(("perturbation_ratio", response / imposed, "1"))
        rows += [
            inputs.row(model, metric, NAME, value, units=units, reference=reference)
            for metric, value, units in values
            if finite(value)
        ]
    return rows


FAMILY = Family(NAME, compute, no_plot)
compute_and_plot = FAMILY.compute_and_plot
