"""Temporal family: lag-k autocorrelation of members against the truth's, where consecutive dates exist.

At every valid pixel the Pearson correlation of x(t) with x(t + k steps) over the date pairs exactly k
steps apart (the step is the smallest date spacing); for an ensemble, of each member's series, averaged
over members. Rows: the area-weighted mean over pixels (`autocorrelation`, with `lag`) of the truth and each
model, and `autocorrelation_error` = model - truth. A model sampling every date independently keeps the
truth's autocorrelation only through its conditioning; too low is temporal noise, too high persistence.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from stride_contracts import MetricRow
from stride_core.maps import new_figure
from stride_core.metrics import pointwise_correlation, weighted_mean
from stride_eval.families.base import Family, finite
from stride_eval.inputs import EvalInputs

NAME = "temporal"
MIN_PAIRS = 3


def mean_autocorrelation(
    series: np.ndarray, first: np.ndarray, second: np.ndarray, weights: np.ndarray
) -> float:
    """Area-weighted mean over pixels of the correlation of series[first] with series[second] ([time, ..., H, W])."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        r = pointwise_correlation(series[first], series[second], axis=0)
        if r.ndim == 3:  # [member, H, W]: the members' mean
            r = np.nanmean(r, axis=0)
    return weighted_mean(r, weights)


def compute(inputs: EvalInputs) -> list[MetricRow]:
    rows: list[MetricRow] = []
    for lag in inputs.lags:
        first, second = inputs.consecutive_pairs(lag)
        if first.size < MIN_PAIRS:
            continue
        reference = mean_autocorrelation(inputs.truth, first, second, inputs.weights)
        if not finite(reference):
            continue
        rows.append(inputs.row("truth", "autocorrelation", NAME, reference, units="1", lag=float(lag)))
        for model, prediction in inputs.predictions.items():
            value = mean_autocorrelation(prediction.fields, first, second, inputs.weights)
            if finite(value):
                rows.append(inputs.row(model, "autocorrelation", NAME, value, units="1", lag=float(lag)))
                rows.append(
                    inputs.row(
                        model, "autocorrelation_error", NAME, value - reference, units="1", lag=float(lag)
                    )
                )
    return rows


def plot(rows: Sequence[MetricRow], inputs: EvalInputs) -> Figure | None:
    """Autocorrelation against lag, one line per model, the truth in black."""
    values = [r for r in rows if r.metric == "autocorrelation"]
    if not values:
        return None
    fig = new_figure((5.5, 4.0))
    ax = fig.subplots()
    for model in list(dict.fromkeys(r.model for r in values)):
        mine = sorted((r for r in values if r.model == model), key=lambda r: r.lag or 0)
        ax.plot(
            [float(r.lag or 0) for r in mine],
            [r.value for r in mine],
            marker="o",
            label=model,
            color="black" if model == "truth" else None,
        )
    ax.set(title=f"{inputs.variable}: autocorrelation", xlabel="lag (time steps)", ylabel="mean correlation")
    ax.legend(fontsize=8)
    return fig


FAMILY = Family(NAME, compute, plot)
compute_and_plot = FAMILY.compute_and_plot
