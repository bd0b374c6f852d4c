"""Features family: consistency of the ensemble with the LR input it was conditioned on.

Each member is coarsened conservatively (area-weighted block means, as stride-data made the LR input when
`lr_method` is conservative_coarsening) to the LR grid and compared with the LR conditioning of the same
variable: `lr_rmse`, `lr_bias` per member, averaged over members, and the truth's own (the floor: zero up to
the masking of invalid cells when the LR input was coarsened from this truth; the LR source's mismatch when
it was regridded from another source). Only when the target variable is among the LR inputs. The
perturbation response (samples from perturbed inputs) is not computed yet.
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
    if inputs.lr is None or inputs.factor < 1:
        return []
    lr = inputs.lr.astype(np.float64)
    coarse_truth = coarsen_conservative(
        inputs.truth, inputs.factor, inputs.weights, min_valid_fraction=MIN_VALID_FRACTION
    )
    valid = np.isfinite(coarse_truth) & np.isfinite(lr)
    reference = np.where(valid, lr, np.nan)
    rows: list[MetricRow] = []
    candidates = {"truth": coarse_truth[:, None]}
    for model, prediction in inputs.predictions.items():
        candidates[model] = coarsen_conservative(
            prediction.ensemble, inputs.factor, inputs.weights, min_valid_fraction=MIN_VALID_FRACTION
        )
    for model, coarse in candidates.items():
        per_member = [
            (float(rmse(coarse[:, k], reference)), float(bias(coarse[:, k], reference)))
            for k in range(coarse.shape[1])
        ]
        for metric, value in (
            ("lr_rmse", np.mean([p[0] for p in per_member])),
            ("lr_bias", np.mean([p[1] for p in per_member])),
        ):
            if finite(float(value)):
                rows.append(inputs.row(model, metric, NAME, float(value)))
    return rows


FAMILY = Family(NAME, compute, no_plot)
compute_and_plot = FAMILY.compute_and_plot
