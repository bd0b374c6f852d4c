"""Probabilistic family: fair CRPS, spread-skill, rank histogram, Brier score, reliability and CRPS skill.

A deterministic model is scored as a one-member ensemble (its CRPS is its MAE, its Brier score that of
0/1 probabilities), so baselines sit in the same table. CRPS skill scores `crpss = 1 - CRPS / CRPS_ref`
are computed against every reference model (the baselines) present.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from stride_contracts import MetricRow
from stride_core.calendars import iso
from stride_core.maps import new_figure
from stride_core.metrics import (
    brier_score_fair,
    crps_ensemble_fair,
    exceedance_probability,
    rank_histogram,
    rank_histogram_flatness,
    reliability_sums,
    spread_skill_ratio,
)
from stride_eval.families.base import Family, finite
from stride_eval.families.panels import threshold_styles
from stride_eval.inputs import EvalInputs

NAME = "probabilistic"
RELIABILITY_BINS = 10


def compute(inputs: EvalInputs) -> list[MetricRow]:
    rows: list[MetricRow] = []
    crps_of: dict[str, float] = {}
    valid = inputs.valid
    for model, prediction in inputs.predictions.items():
        ensemble = prediction.ensemble
        crps = crps_ensemble_fair(ensemble, inputs.truth, member_axis=1)  # [time, H, W], NaN where truth is
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # no valid pixel: NaN, no row
            mean_crps = float(np.nanmean(crps))
        if not finite(mean_crps):
            continue  # a broken forecast (NaN at valid pixels) or no valid truth: no row can hold it
        crps_of[model] = mean_crps
        rows.append(inputs.row(model, "crps", NAME, mean_crps))
        if inputs.per_date:
            for time, value in zip(inputs.times, np.nanmean(crps, axis=(1, 2)), strict=True):
                if np.isfinite(value):
                    rows.append(inputs.row(model, "crps", NAME, value, date=iso(time)))
        if prediction.members is not None and prediction.members.shape[1] > 1:
            ratio = spread_skill_ratio(prediction.members, inputs.truth, member_axis=1)
            if finite(float(ratio)):  # 0 / 0 for members identical to the truth
                rows.append(inputs.row(model, "spread_skill", NAME, float(ratio), units="1"))
            frequencies = rank_histogram(prediction.members, inputs.truth, member_axis=1)
            if np.isfinite(frequencies).all():
                rows += [
                    inputs.row(model, "rank_histogram", NAME, f, units="1", bin=float(rank))
                    for rank, f in enumerate(frequencies)
                ]
                delta = rank_histogram_flatness(frequencies, int(valid.sum()))
                if finite(delta):
                    rows.append(inputs.row(model, "rank_flatness", NAME, delta, units="1"))
        for threshold, level in zip(inputs.thresholds, inputs.threshold_quantiles, strict=True):
            brier = brier_score_fair(ensemble, inputs.truth, member_axis=1, threshold=threshold)
            rows.append(
                inputs.row(
                    model,
                    "brier",
                    NAME,
                    float(np.nanmean(brier)),
                    units="1",
                    threshold=threshold,
                    quantile=level,
                )
            )
            sums = reliability_terms(ensemble, inputs.truth, threshold)
            rows += reliability_rows(inputs, model, threshold, level, sums)
    return rows + crpss_rows(inputs, crps_of)


def reliability_terms(
    ensemble: np.ndarray, truth: np.ndarray, threshold: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`reliability_sums` of the ensemble's exceedance probability [time, member, H, W] at `threshold`."""
    probability = exceedance_probability(ensemble, member_axis=1, threshold=threshold)
    event = np.where(np.isnan(truth), np.nan, (truth > threshold).astype(np.float64))
    return reliability_sums(probability, event, n_bins=RELIABILITY_BINS)


def reliability_rows(
    inputs: EvalInputs,
    model: str,
    threshold: float,
    level: float | None,
    sums: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> list[MetricRow]:
    """The reliability diagram's rows (mean forecast probability, observed frequency, count per bin)."""
    rows: list[MetricRow] = []
    sum_p, sum_o, counts = sums
    centres = (np.arange(RELIABILITY_BINS) + 0.5) / RELIABILITY_BINS
    for centre, p, o, n in zip(centres, sum_p, sum_o, counts, strict=True):
        if n == 0:
            continue
        common = {"units": "1", "threshold": threshold, "quantile": level, "bin": float(centre)}
        rows.append(inputs.row(model, "reliability_forecast", NAME, p / n, **common))  # type: ignore[arg-type]
        rows.append(inputs.row(model, "reliability_observed", NAME, o / n, **common))  # type: ignore[arg-type]
        rows.append(inputs.row(model, "reliability_count", NAME, float(n), **common))  # type: ignore[arg-type]
    return rows


def crpss_rows(inputs: EvalInputs, crps_of: dict[str, float]) -> list[MetricRow]:
    """CRPS skill `1 - CRPS / CRPS_ref` of every model against every reference (baseline) present."""
    rows: list[MetricRow] = []
    for model, model_crps in crps_of.items():
        for reference in inputs.references:
            if reference == model or reference not in crps_of or crps_of[reference] == 0:
                continue
            skill = 1.0 - model_crps / crps_of[reference]
            if finite(skill):
                rows.append(inputs.row(model, "crpss", NAME, skill, units="1", reference=reference))
    return rows


def plot(rows: Sequence[MetricRow], inputs: EvalInputs) -> Figure | None:
    """Rank histograms (left) and reliability diagrams at each threshold (right)."""
    ranks = [r for r in rows if r.metric == "rank_histogram"]
    ensembles = {r.model for r in ranks}  # deterministic models only have probabilities 0 and 1
    forecast = [r for r in rows if r.metric == "reliability_forecast" and r.model in ensembles]
    observed = {(r.model, r.threshold, r.bin): r.value for r in rows if r.metric == "reliability_observed"}
    if not ranks and not forecast:
        return None
    fig = new_figure((11.0, 4.0))
    left, right = fig.subplots(1, 2)
    models = sorted({r.model for r in ranks})
    colours = inputs.colours(r.model for r in rows)
    width = 0.8 / max(len(models), 1)
    for i, model in enumerate(models):
        mine = [r for r in ranks if r.model == model]
        left.bar(
            [r.bin + i * width for r in mine if r.bin is not None],
            [r.value for r in mine],
            width,
            label=model,
            color=colours[model],
        )
    if models:
        n_ranks = len([r for r in ranks if r.model == models[0]])
        left.axhline(1.0 / n_ranks, color="black", lw=1, ls="--", label="flat")
        left.legend(fontsize=8)
    left.set(
        title=f"{inputs.title}: rank histogram",
        xlabel="rank of the truth among members",
        ylabel="frequency",
    )
    styles = threshold_styles(r.threshold for r in forecast)
    for model, threshold in sorted({(r.model, r.threshold) for r in forecast}, key=str):
        mine = [r for r in forecast if r.model == model and r.threshold == threshold]
        line, marker = styles[threshold]
        right.plot(
            [r.value for r in mine],
            [observed[(model, threshold, r.bin)] for r in mine],
            marker=marker,
            ls=line,
            color=colours[model],
            label=f"{model} > {threshold:.3g} {inputs.units}",
        )
    right.plot([0, 1], [0, 1], color="black", lw=1, ls="--")
    right.set(
        title=f"{inputs.title}: reliability",
        xlabel="forecast probability",
        ylabel="observed frequency",
        xlim=(0, 1),
        ylim=(0, 1),
    )
    if forecast:
        right.legend(fontsize=7)
    return fig


FAMILY = Family(NAME, compute, plot)
compute_and_plot = FAMILY.compute_and_plot
