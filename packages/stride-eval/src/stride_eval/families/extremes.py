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
    thresholds = event_thresholds(inputs, truth_q)
    truth_share = {t: float(np.mean(truth > t)) for t, _ in thresholds}
    rows = quantile_rows(inputs, "truth", levels, truth_q)
    for model, prediction in inputs.predictions.items():
        if is_broken(prediction, inputs.valid):
            continue
        sample = pooled_values(prediction, inputs.valid)
        rows += quantile_rows(inputs, model, levels, quantiles(sample, levels), truth_q)
        share = {t: float(np.mean(sample > t)) for t, _ in thresholds}
        rows += exceedance_rows(inputs, model, thresholds, share, truth_share)
    rows += block_maxima_rows(inputs)
    return [r for r in rows if finite(r.value)]


def event_thresholds(inputs: EvalInputs, truth_q: np.ndarray) -> list[tuple[float, float | None]]:
    """(threshold, quantile level) of the exceedance ratios: the truth's quantiles, then the user-given
    thresholds (those taken at a truth quantile are already among the first)."""
    thresholds: list[tuple[float, float | None]] = [
        (float(q), level) for q, level in zip(truth_q, inputs.quantile_levels, strict=True)
    ]
    thresholds += [
        (t, level)
        for t, level in zip(inputs.thresholds, inputs.threshold_quantiles, strict=True)
        if level is None
    ]
    return thresholds


def quantile_rows(
    inputs: EvalInputs,
    model: str,
    levels: Sequence[float],
    values: Sequence[float] | np.ndarray,
    truth_q: Sequence[float] | np.ndarray | None = None,
) -> list[MetricRow]:
    """`quantile` rows of `model`, and their `quantile_rel_error` against `truth_q` where it is nonzero."""
    rows: list[MetricRow] = []
    for i, (level, q) in enumerate(zip(levels, values, strict=True)):
        rows.append(inputs.row(model, "quantile", NAME, float(q), quantile=level))
        reference = None if truth_q is None else float(truth_q[i])
        if reference:
            error = (float(q) - reference) / abs(reference)
            rows.append(inputs.row(model, "quantile_rel_error", NAME, error, units="1", quantile=level))
    return rows


def exceedance_rows(
    inputs: EvalInputs,
    model: str,
    thresholds: Sequence[tuple[float, float | None]],
    share: dict[float, float],
    truth_share: dict[float, float],
) -> list[MetricRow]:
    """`exceedance_ratio` rows: the model's share of values above each threshold over the truth's share
    (thresholds the truth never exceeds have no ratio)."""
    return [
        inputs.row(
            model,
            "exceedance_ratio",
            NAME,
            share[threshold] / truth_share[threshold],
            units="1",
            threshold=threshold,
            quantile=level,
        )
        for threshold, level in thresholds
        if truth_share[threshold] > 0
    ]


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
    rows = block_rows(inputs, "truth", metric, truth_max, names)
    for model, prediction in inputs.predictions.items():
        if is_broken(prediction, inputs.valid):
            continue
        maxima, _ = block_maxima(prediction.fields[keep], labels[keep])  # [block, (member,) H, W]
        value = float(np.nanmean(maxima))
        rows += block_rows(inputs, model, metric, maxima, names)
        if reference != 0:
            rows.append(
                inputs.row(
                    model, f"{metric}_rel_error", NAME, (value - reference) / abs(reference), units="1"
                )
            )
    return rows


def histogram_quantile(counts: np.ndarray, edges: np.ndarray, level: float) -> float:
    """The level-quantile of a histogram (counts over `edges`), linear within the bin it falls in."""
    cdf = np.concatenate([[0.0], np.cumsum(counts) / counts.sum()])
    return float(np.interp(level, cdf, edges))


def tail_quantile(counts: np.ndarray, edges: np.ndarray, overflow: np.ndarray, level: float) -> float:
    """The level-quantile of a sample held as a histogram over `edges` plus its sorted values above them.

    In the overflow it is numpy's default (linear between order statistics), exact; inside the edges,
    `histogram_quantile` of the whole sample (within one bin width).
    """
    inside = int(counts.sum())
    total = inside + overflow.size
    position = level * (total - 1)
    if overflow.size == 0 or position < inside:
        return histogram_quantile(
            np.concatenate([counts, [overflow.size]]), np.append(edges, edges[-1]), level
        )
    low = int(np.floor(position)) - inside
    high = min(low + 1, overflow.size - 1)
    fraction = position - np.floor(position)
    below = overflow[low] if low >= 0 else edges[-1]
    return float(below + fraction * (overflow[high] - below))


class ExtremesSums:
    """The extremes family over chunks of dates. The truth's statistics come from the whole truth (exact);
    each model's exceedance counts and block maxima (np.fmax per block and pixel) add up exactly, and its
    quantiles come from a histogram over `edges` (within one bin width of the exact ones) plus the exact
    values above the truth's range (their memory grows with how many there are)."""

    def __init__(self, template: EvalInputs, edges: np.ndarray) -> None:
        self.template = template
        self.edges = edges
        self.position = {t: i for i, t in enumerate(template.times)}
        self.blocks = blocks_of(template)
        self.counts: dict[str, np.ndarray] = {}
        self.above: dict[str, dict[float, int]] = {}
        self.values: dict[str, int] = {}
        self.broken: set[str] = set()
        self.overflow: dict[str, list[np.ndarray]] = {}
        self.maxima: dict[str, dict[str, np.ndarray]] = {}
        truth = truth_values(template)
        self.truth_q = quantiles(truth, template.quantile_levels) if truth.size else np.array([])
        self.thresholds = event_thresholds(template, self.truth_q)
        self.truth_share = {t: float(np.mean(truth > t)) for t, _ in self.thresholds}

    def update(self, chunk: EvalInputs) -> None:
        for model, prediction in chunk.predictions.items():
            if model in self.broken or is_broken(prediction, chunk.valid):
                self.broken.add(model)
                continue
            sample = pooled_values(prediction, chunk.valid)
            beyond = sample > self.edges[-1]
            # Values above the truth's range are kept exactly: a model's extremes may exceed the truth's.
            self.overflow.setdefault(model, []).append(sample[beyond].astype(np.float64))
            clipped = np.clip(sample[~beyond], self.edges[0], self.edges[-1])
            counts = np.histogram(clipped, bins=self.edges)[0]
            self.counts[model] = self.counts[model] + counts if model in self.counts else counts
            self.values[model] = self.values.get(model, 0) + sample.size
            above = self.above.setdefault(model, {})
            for threshold, _ in self.thresholds:
                above[threshold] = above.get(threshold, 0) + int(np.sum(sample > threshold))
            if self.blocks is not None:
                _, labels, keep = self.blocks
                index = np.array([self.position[t] for t in chunk.times])
                here = keep[index]
                if here.any():
                    maxima, names = block_maxima(prediction.fields[here], labels[index][here])
                    mine = self.maxima.setdefault(model, {})
                    for name, block in zip(names, maxima, strict=True):
                        mine[str(name)] = np.fmax(mine[str(name)], block) if str(name) in mine else block

    def rows(self) -> list[MetricRow]:
        inputs = self.template
        if self.truth_q.size == 0:
            return []
        levels = inputs.quantile_levels
        rows = quantile_rows(inputs, "truth", levels, self.truth_q)
        for model, counts in self.counts.items():
            if model in self.broken or not self.values[model]:
                continue
            overflow = np.sort(np.concatenate(self.overflow[model]))
            values = [tail_quantile(counts, self.edges, overflow, level) for level in levels]
            rows += quantile_rows(inputs, model, levels, values, self.truth_q)
            share = {t: n / self.values[model] for t, n in self.above[model].items()}
            rows += exceedance_rows(inputs, model, self.thresholds, share, self.truth_share)
        rows += self._block_rows()
        return [r for r in rows if finite(r.value)]

    def _block_rows(self) -> list[MetricRow]:
        inputs = self.template
        if self.blocks is None:
            return []
        period, labels, keep = self.blocks
        metric = f"{period}_max"
        truth_max, _ = block_maxima(inputs.truth[keep], labels[keep])
        reference = float(np.nanmean(truth_max))
        rows = block_rows(inputs, "truth", metric, truth_max, np.unique(labels[keep]))
        for model, blocks in self.maxima.items():
            if model in self.broken:
                continue
            names = sorted(blocks)
            maxima = np.stack([blocks[name] for name in names])
            value = float(np.nanmean(maxima))
            rows += block_rows(inputs, model, metric, maxima, np.array(names))
            if reference != 0:
                error = (value - reference) / abs(reference)
                rows.append(inputs.row(model, f"{metric}_rel_error", NAME, error, units="1"))
        return rows


def block_rows(
    inputs: EvalInputs, model: str, metric: str, maxima: np.ndarray, names: np.ndarray
) -> list[MetricRow]:
    """The mean over all blocks and one row per block (date = the block's label)."""
    rows = [inputs.row(model, metric, NAME, float(np.nanmean(maxima)))]
    rows += [
        inputs.row(model, metric, NAME, float(np.nanmean(m)), date=str(name))
        for name, m in zip(names, maxima, strict=True)
        if np.isfinite(m).any()
    ]
    return rows


def plot(rows: Sequence[MetricRow], inputs: EvalInputs) -> Figure | None:
    """Relative quantile errors and exceedance ratios against the quantile level, one line per model."""
    errors = [r for r in rows if r.metric == "quantile_rel_error"]
    ratios = [r for r in rows if r.metric == "exceedance_ratio" and r.quantile is not None]
    if not errors and not ratios:
        return None
    fig = new_figure((11.0, 4.0))
    left, right = fig.subplots(1, 2)
    colours = inputs.colours(r.model for r in rows)
    for ax, selected, title, ideal, ylabel in (
        (left, errors, "relative quantile error", 0.0, "(q_model - q_truth) / |q_truth|"),
        (right, ratios, "exceedance ratio above the truth's quantile", 1.0, "model share / truth share"),
    ):
        for model in sorted({r.model for r in selected}):
            mine = sorted((r for r in selected if r.model == model), key=lambda r: r.quantile or 0)
            ax.plot(
                [str(r.quantile) for r in mine],
                [r.value for r in mine],
                marker="o",
                label=model,
                color=colours[model],
            )
        ax.axhline(ideal, color="black", lw=1, ls="--")
        ax.set(title=f"{inputs.title}: {title}", xlabel="quantile level of the truth", ylabel=ylabel)
        ax.title.set_fontsize(9)
        if selected:
            ax.legend(fontsize=8)
    return fig


FAMILY = Family(NAME, compute, plot)
compute_and_plot = FAMILY.compute_and_plot
