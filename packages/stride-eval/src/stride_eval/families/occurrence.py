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
from stride_eval.families.base import (
    Family,
    is_broken,
    no_plot,
    pooled_values,
    warn_unknown_positive_definite,
)
from stride_eval.inputs import EvalInputs

NAME = "occurrence"
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


def compute(inputs: EvalInputs, family: str = NAME) -> list[MetricRow]:
    if not inputs.positive_definite_known:
        warn_unknown_positive_definite(family, inputs)
        return []
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
        inputs.row("truth", metric, family, value, units=units[metric]) for metric, value in reference.items()
    ]
    for model, prediction in inputs.predictions.items():
        if is_broken(prediction, valid):
            continue  # a broken forecast: other families show it; a NaN row would break the contract
        pooled = pooled_values(prediction, valid)  # the members at the truth's valid pixels
        values = {"wet_freq": wet_frequency(pooled, threshold), "p99": upper_quantile(pooled)}
        for metric, value in values.items():
            rows.append(inputs.row(model, metric, family, value, units=units[metric]))
            rows.append(
                inputs.row(
                    model, f"{metric}_error", family, abs(value - reference[metric]), units=units[metric]
                )
            )
    return rows


FAMILY = Family(NAME, compute, no_plot, needs_positive_definite=True)
compute_and_plot = FAMILY.compute_and_plot
