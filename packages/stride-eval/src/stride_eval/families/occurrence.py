"""Occurrence family: wet-pixel frequency and the 99th percentile, for positive-definite variables only.

Precipitation-like fields are judged by how often it rains and how hard it rains at the tail, which
neither CRPS nor the spectra show: a smooth baseline drizzles everywhere (too many wet pixels, too low a
p99), a good ensemble matches both. Both statistics pool every valid pixel of every date, and for an
ensemble every member as well (what users receive, as in the scale family), against the same statistic
of the truth. Rows: the truth's value (model 'truth'), each model's value, and each model's absolute
error `<metric>_error` = |model - truth|.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from stride_contracts import MetricRow
from stride_eval.inputs import EvalInputs

FAMILY = "occurrence"
QUANTILE = 0.99
"""The tail quantile reported as `p99`."""


def wet_frequency(values: NDArray[np.floating[Any]], threshold: float) -> float:
    """Share of `values` strictly above `threshold` (the stride-stats wet_fraction convention).

    The comparison runs in the values' own dtype, as stride-stats does, so a float32 0.1 is not above 0.1.
    """
    return float(np.mean(values > threshold))


def upper_quantile(values: NDArray[np.floating[Any]]) -> float:
    """The QUANTILE of `values` (numpy's default linear interpolation between order statistics)."""
    return float(np.quantile(values.astype(np.float64), QUANTILE))


def compute(inputs: EvalInputs) -> list[MetricRow]:
    if not inputs.positive_definite:
        return []
    valid = ~np.isnan(inputs.truth)  # [time, H, W]
    if not valid.any():
        return []
    truth = inputs.truth[valid]
    threshold = inputs.wet_threshold
    reference = {"wet_freq": wet_frequency(truth, threshold), "p99": upper_quantile(truth)}
    units = {"wet_freq": "1", "p99": inputs.units}
    rows = [
        inputs.row("truth", metric, FAMILY, value, units=units[metric]) for metric, value in reference.items()
    ]
    for model, prediction in inputs.predictions.items():
        if prediction.members is not None:
            # [time, member, H, W] -> the members at the truth's valid pixels, pooled.
            pooled = np.moveaxis(prediction.members, 1, 0)[:, valid].ravel()
        else:
            pooled = prediction.point[valid]
        if not np.isfinite(pooled).all():
            continue  # a broken forecast: other families show it; a NaN row would break the contract
        values = {"wet_freq": wet_frequency(pooled, threshold), "p99": upper_quantile(pooled)}
        for metric, value in values.items():
            rows.append(inputs.row(model, metric, FAMILY, value, units=units[metric]))
            rows.append(
                inputs.row(
                    model, f"{metric}_error", FAMILY, abs(value - reference[metric]), units=units[metric]
                )
            )
    return rows
