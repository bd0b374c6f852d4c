"""Extremes family: upper quantiles and their relative errors, and exceedance-frequency ratios.

Pooled like the distributions family (valid pixels of every date and member). `quantile` rows at 0.9,
0.95, 0.99, 0.999 for the truth and each model, `quantile_rel_error = (q_model - q_truth) / |q_truth|`
(skipped where the truth's quantile is 0, e.g. a dry 90th percentile), and `exceedance_ratio`: the share
of the model's values above the truth's quantile (and above each configured threshold) over the truth's
share (1 is right, below 1 too few extremes).

Block maxima: when the dates span at least two years, the annual maximum at every pixel (of the truth and
of each member), else at least two months, the monthly maximum; a block counts when it has at least half
the dates of the fullest block (a partial first or last month does not). `annual_max` / `monthly_max` rows
per block (date = "YYYY" / "YYYY-MM") and over all blocks, the mean over valid pixels, blocks and members,
and `annual_max_rel_error` / `monthly_max_rel_error` of each model against the truth's. Periods are read
from the dates' ISO text, so any calendar (360_day, noleap) works.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from stride_contracts import MetricRow
from stride_core.calendars import iso_strings
from stride_core.maps import new_figure
from stride_core.metrics import block_maxima, quantiles
from stride_eval.families.base import Family, finite, is_broken, pooled_values, truth_values
from stride_eval.inputs import EvalInputs

NAME = "extremes"


def compute(inputs: EvalInputs) -> list[MetricRow]:
    truth = truth_values(inputs)
    if truth.size == 0:
        return []
    levels = inputs.quantile_levels
    truth_q = quantiles(truth, levels)
    rows = [
        inputs.row("truth", "quantile", NAME, q, quantile=level)
        for level, q in zip(levels, truth_q, strict=True)
    ]
    thresholds: list[tuple[float, float | None]] = [
        (float(q), level) for q, level in zip(truth_q, levels, strict=True)
    ]
    thresholds += [
        (t, level)
        for t, level in zip(inputs.thresholds, inputs.threshold_quantiles, strict=True)
        if level is None
    ]
    truth_share = {t: float(np.mean(truth > t)) for t, _ in thresholds}
    for model, prediction in inputs.predictions.items():
        if is_broken(prediction, inputs.valid):
            continue
        sample = pooled_values(prediction, inputs.valid)
        for level, q, reference in zip(levels, quantiles(sample, levels), truth_q, strict=True):
            rows.append(inputs.row(model, "quantile", NAME, q, quantile=level))
            if reference != 0:
                rows.append(
                    inputs.row(
                        model,
                        "quantile_rel_error",
                        NAME,
                        (q - reference) / abs(reference),
                        units="1",
                        quantile=level,
                    )
                )
        for threshold, threshold_level in thresholds:
            if truth_share[threshold] > 0:
                ratio = float(np.mean(sample > threshold)) / truth_share[threshold]
                rows.append(
                    inputs.row(
                        model,
                        "exceedance_ratio",
                        NAME,
                        ratio,
                        units="1",
                        threshold=threshold,
                        quantile=threshold_level,
                    )
                )
    rows += block_maxima_rows(inputs)
    return [r for r in rows if finite(r.value)]


PERIODS = (("annual", 4), ("monthly", 7))
"""Block period and the length of its ISO prefix ("YYYY", "YYYY-MM"), longest first."""


def blocks_of(inputs: EvalInputs) -> tuple[str, np.ndarray, np.ndarray] | None:
    """(period, block label per date, which dates count) for the longest period with >= 2 full blocks."""
    stamps = iso_strings(inputs.times)
    for period, length in PERIODS:
        labels = np.array([stamp[:length] for stamp in stamps])
        names, counts = np.unique(labels, return_counts=True)
        full = names[counts * 2 >= counts.max()]
        if full.size >= 2:
            return period, labels, np.isin(labels, full)
    return None


def block_maxima_rows(inputs: EvalInputs) -> list[MetricRow]:
    found = blocks_of(inputs)
    if found is None:
        return []
    period, labels, keep = found
    metric = f"{period}_max"
    truth_max, names = block_maxima(inputs.truth[keep], labels[keep])
    reference = float(np.nanmean(truth_max))
    rows = [inputs.row("truth", metric, NAME, reference)]
    rows += [
        inputs.row("truth", metric, NAME, float(np.nanmean(m)), date=str(name))
        for name, m in zip(names, truth_max, strict=True)
        if np.isfinite(m).any()
    ]
    for model, prediction in inputs.predictions.items():
        if is_broken(prediction, inputs.valid):
            continue
        maxima, _ = block_maxima(prediction.fields[keep], labels[keep])  # [block, (member,) H, W]
        value = float(np.nanmean(maxima))
        rows.append(inputs.row(model, metric, NAME, value))
        rows += [
            inputs.row(model, metric, NAME, float(np.nanmean(m)), date=str(name))
            for name, m in zip(names, maxima, strict=True)
            if np.isfinite(m).any()
        ]
        if reference != 0:
            rows.append(
                inputs.row(
                    model, f"{metric}_rel_error", NAME, (value - reference) / abs(reference), units="1"
                )
            )
    return rows


def plot(rows: Sequence[MetricRow], inputs: EvalInputs) -> Figure | None:
    """Relative quantile errors and exceedance ratios against the quantile level, one line per model."""
    errors = [r for r in rows if r.metric == "quantile_rel_error"]
    ratios = [r for r in rows if r.metric == "exceedance_ratio" and r.quantile is not None]
    if not errors and not ratios:
        return None
    fig = new_figure((11.0, 4.0))
    left, right = fig.subplots(1, 2)
    for ax, selected, title, ideal in (
        (left, errors, "relative quantile error", 0.0),
        (right, ratios, "exceedance-frequency ratio (above the truth's quantile)", 1.0),
    ):
        for model in sorted({r.model for r in selected}):
            mine = sorted((r for r in selected if r.model == model), key=lambda r: r.quantile or 0)
            ax.plot([str(r.quantile) for r in mine], [r.value for r in mine], marker="o", label=model)
        ax.axhline(ideal, color="black", lw=1, ls="--")
        ax.set(title=f"{inputs.variable}: {title}", xlabel="quantile level", ylabel="1")
        if selected:
            ax.legend(fontsize=8)
    return fig


FAMILY = Family(NAME, compute, plot)
compute_and_plot = FAMILY.compute_and_plot
