"""Distributions family: histograms and QQ against the truth, Wasserstein-1, Perkins skill score, wet days.

Every statistic pools the valid pixels of every date (and, for an ensemble, every member: what users
receive) against the same pool of the truth. For positive-definite variables it adds the occurrence
family's wet-pixel frequency and p99 (same metric names, so tables stay comparable), the mean intensity on
wet pixels, and the distribution of dry-spell lengths at each pixel where dates are consecutive.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from stride_contracts import MetricRow
from stride_core.maps import new_figure, with_units
from stride_core.metrics import (
    dry_spell_lengths,
    perkins_skill_score,
    quantiles,
    relative_histogram,
    wasserstein_1,
)
from stride_eval.families import occurrence
from stride_eval.families.base import Family, finite, is_broken, pooled_values, truth_values
from stride_eval.inputs import EvalInputs

NAME = "distributions"
QQ_LEVELS = (*tuple(np.round(np.linspace(0.01, 0.99, 99), 2)), 0.995, 0.999)
MAX_SPELL = 30
"""Dry spells of MAX_SPELL steps or longer share the last histogram bin."""


def consecutive_segments(inputs: EvalInputs) -> list[slice]:
    """Runs of dates one step apart (at least 2 dates each)."""
    first, second = inputs.consecutive_pairs(1)
    breaks = np.ones(len(inputs.times), dtype=bool)  # breaks[i]: date i starts a new segment
    breaks[second[second == first + 1]] = False
    starts = [int(i) for i in np.flatnonzero(breaks)] + [len(inputs.times)]
    return [slice(a, b) for a, b in itertools.pairwise(starts) if b - a >= 2]


def spell_lengths(series: np.ndarray, segments: list[slice], threshold: float) -> np.ndarray:
    """Dry-spell lengths of [time, ...] series over each consecutive segment."""
    parts = [dry_spell_lengths(series[segment], threshold=threshold, axis=0) for segment in segments]
    return np.concatenate(parts) if parts else np.array([], dtype=np.int64)


def compute(inputs: EvalInputs) -> list[MetricRow]:
    truth = truth_values(inputs)
    if truth.size == 0:
        return []
    valid = inputs.valid
    edges = np.linspace(float(truth.min()), float(truth.max()), inputs.n_bins + 1)
    if edges[-1] <= edges[0]:
        edges = np.linspace(edges[0], edges[0] + 1.0, inputs.n_bins + 1)
    centres = 0.5 * (edges[1:] + edges[:-1])
    rows: list[MetricRow] = []

    def describe(model: str, sample: np.ndarray) -> None:
        for centre, share in zip(centres, relative_histogram(sample, edges), strict=True):
            rows.append(inputs.row(model, "histogram", NAME, share, units="1", bin=float(centre)))
        for level, value in zip(QQ_LEVELS, quantiles(sample, QQ_LEVELS), strict=True):
            rows.append(inputs.row(model, "qq", NAME, value, quantile=float(level)))

    describe("truth", truth)
    for model, prediction in inputs.predictions.items():
        if is_broken(prediction, valid):
            continue
        sample = pooled_values(prediction, valid)
        describe(model, sample)
        rows.append(inputs.row(model, "wasserstein", NAME, wasserstein_1(sample, truth)))
        rows.append(
            inputs.row(model, "perkins", NAME, perkins_skill_score(sample, truth, edges=edges), units="1")
        )
    rows += occurrence.compute(inputs, family=NAME)
    if inputs.positive_definite_known and inputs.positive_definite:
        rows += wet_rows(inputs, truth)
    return rows


def wet_rows(inputs: EvalInputs, truth: np.ndarray) -> list[MetricRow]:
    """Mean intensity on wet pixels and dry-spell lengths, for the truth and each model."""
    threshold = inputs.wet_threshold
    segments = consecutive_segments(inputs)
    samples = {"truth": (truth, inputs.truth[:, None])}
    for model, prediction in inputs.predictions.items():
        if not is_broken(prediction, inputs.valid):
            samples[model] = (pooled_values(prediction, inputs.valid), prediction.ensemble)
    rows: list[MetricRow] = []
    reference: dict[str, float] = {}
    for model, (sample, ensemble) in samples.items():
        wet = sample[sample > threshold]
        if wet.size:
            intensity = float(np.mean(wet, dtype=np.float64))
            reference.setdefault("wet_mean_intensity", intensity)
            rows.append(inputs.row(model, "wet_mean_intensity", NAME, intensity))
            if model != "truth":
                error = intensity - reference["wet_mean_intensity"]
                rows.append(inputs.row(model, "wet_mean_intensity_error", NAME, error))
        if not segments:
            continue
        # NaN (invalid) pixels end spells; [time, member, H, W] -> one series per member and pixel.
        series = np.where(inputs.valid[:, None], ensemble, np.nan).reshape(ensemble.shape[0], -1)
        lengths = spell_lengths(series, segments, threshold)
        if lengths.size == 0:
            continue
        mean_length = float(lengths.mean())
        rows.append(inputs.row(model, "dry_spell_mean", NAME, mean_length, units="steps"))
        counts = np.bincount(np.minimum(lengths, MAX_SPELL), minlength=MAX_SPELL + 1)[1:]
        for length, count in enumerate(counts, start=1):
            if count:
                rows.append(
                    inputs.row(
                        model, "dry_spell_hist", NAME, count / lengths.size, units="1", bin=float(length)
                    )
                )
    return [r for r in rows if finite(r.value)]


def plot(rows: Sequence[MetricRow], inputs: EvalInputs) -> Figure | None:
    """Value histograms (left, log frequency) and a QQ plot against the truth (right)."""
    histogram = [r for r in rows if r.metric == "histogram"]
    if not histogram:
        return None
    qq = {(r.model, r.quantile): r.value for r in rows if r.metric == "qq"}
    fig = new_figure((11.0, 4.0))
    left, right = fig.subplots(1, 2)
    models = list(dict.fromkeys(r.model for r in histogram))
    for model in models:
        mine = [r for r in histogram if r.model == model and r.value > 0]
        left.semilogy(
            [r.bin for r in mine],
            [r.value for r in mine],
            label=model,
            color="black" if model == "truth" else None,
        )
        if model != "truth":
            right.plot(
                [qq[("truth", q)] for q in QQ_LEVELS],
                [qq[(model, q)] for q in QQ_LEVELS],
                marker=".",
                label=model,
            )
    left.set(
        title=f"{inputs.title}: value histogram",
        xlabel=inputs.axis_label,
        ylabel="share of pixels",
    )
    left.legend(fontsize=8)
    low, high = qq[("truth", QQ_LEVELS[0])], qq[("truth", QQ_LEVELS[-1])]
    right.plot([low, high], [low, high], color="black", lw=1, ls="--")
    right.set(
        title=f"{inputs.title}: QQ (1st to 99.9th percentile)",
        xlabel=with_units("truth", inputs.units),
        ylabel=with_units("model", inputs.units),
    )
    if inputs.precipitation:  # most quantiles are light rain: a linear axis crowds them at zero
        for axis in (right.set_xscale, right.set_yscale):
            axis("symlog", linthresh=max(inputs.wet_threshold, 1e-3))
    if len(models) > 1:
        right.legend(fontsize=8)
    return fig


FAMILY = Family(NAME, compute, plot, needs_positive_definite=True)
compute_and_plot = FAMILY.compute_and_plot
