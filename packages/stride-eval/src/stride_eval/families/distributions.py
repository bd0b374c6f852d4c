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


def segment_starts(inputs: EvalInputs) -> tuple[np.ndarray, np.ndarray]:
    """Per date: whether it starts a run of dates one step apart, and whether that run has at least 2 dates
    (dry spells are counted only over such runs)."""
    first, second = inputs.consecutive_pairs(1)
    n = len(inputs.times)
    starts = np.ones(n, dtype=bool)
    starts[second[second == first + 1]] = False
    bounds = [*np.flatnonzero(starts).tolist(), n]
    counted = np.zeros(n, dtype=bool)
    for a, b in itertools.pairwise(bounds):
        counted[a:b] = b - a >= 2
    return starts, counted


class DrySpellSums:
    """Dry-spell lengths of the truth and every model over chunks of dates given in order, exactly as one
    pass over every date.

    A dry step is a finite value <= wet_threshold where the truth is valid (compared in the values' dtype,
    like the wet frequency). Per series the state is the length of the spell still open at each member and
    pixel, and the histogram of completed spells (their lengths summed and counted for the mean): a spell
    ends at a wet or invalid step, at a gap in the dates and after the last date, so a spell across a
    chunk boundary stays open in the state and counts once, with its whole length. Runs of consecutive dates
    shorter than 2 count no spell. `compute` is one chunk of every date.
    """

    def __init__(self, template: EvalInputs) -> None:
        self.template = template
        self.active = template.positive_definite_known and template.positive_definite
        self.position = {time: i for i, time in enumerate(template.times)}
        self.starts, self.counted = segment_starts(template)
        self.open: dict[str, np.ndarray] = {}
        """series -> [member, pixel] length of the dry spell ending at the last date seen (0: none)."""
        self.counts: dict[str, np.ndarray] = {}
        """series -> completed spells by length (index MAX_SPELL: that long or longer; index 0 unused)."""
        self.total: dict[str, int] = {}
        self.broken: set[str] = set()

    def update(self, chunk: EvalInputs) -> None:
        if not self.active:
            return
        valid = chunk.valid
        series = {"truth": chunk.truth[:, None]}
        for model, prediction in chunk.predictions.items():
            if is_broken(prediction, valid):
                self.broken.add(model)
            elif model not in self.broken:
                series[model] = prediction.ensemble
        threshold = chunk.wet_threshold
        for i, time in enumerate(chunk.times):
            g = self.position[time]
            if self.starts[g]:
                for name in series:
                    self._close(name)
            if not self.counted[g]:
                continue
            for name, ensemble in series.items():
                values = ensemble[i].reshape(ensemble.shape[1], -1)
                dry = (values <= threshold) & np.isfinite(values) & valid[i].reshape(1, -1)
                run = self.open.get(name)
                if run is None:
                    run = np.zeros(values.shape, dtype=np.int32)
                self._add(name, run[~dry & (run > 0)])
                self.open[name] = np.where(dry, run + 1, 0).astype(np.int32)

    def _add(self, name: str, lengths: np.ndarray) -> None:
        counts = np.bincount(np.minimum(lengths, MAX_SPELL), minlength=MAX_SPELL + 1)
        self.counts[name] = self.counts.get(name, 0) + counts
        self.total[name] = self.total.get(name, 0) + int(lengths.sum(dtype=np.int64))

    def _close(self, name: str) -> None:
        run = self.open.pop(name, None)
        if run is not None:
            self._add(name, run[run > 0])

    def rows(self) -> list[MetricRow]:
        """dry_spell_mean (steps) and dry_spell_hist (share of spells per length) of every series; the spells
        still open count as ended after the last date (the state is left as it is)."""
        rows: list[MetricRow] = []
        for name in [n for n in dict.fromkeys([*self.counts, *self.open]) if n not in self.broken]:
            counts = self.counts.get(name, np.zeros(MAX_SPELL + 1, dtype=np.int64))
            total = self.total.get(name, 0)
            run = self.open.get(name)
            if run is not None:
                tail = run[run > 0]
                counts = counts + np.bincount(np.minimum(tail, MAX_SPELL), minlength=MAX_SPELL + 1)
                total += int(tail.sum(dtype=np.int64))
            n_spells = int(counts[1:].sum())
            if not n_spells:
                continue
            rows.append(self.template.row(name, "dry_spell_mean", NAME, total / n_spells, units="steps"))
            for length, count in enumerate(counts[1:], start=1):
                if count:
                    share = float(count) / n_spells
                    rows.append(
                        self.template.row(name, "dry_spell_hist", NAME, share, units="1", bin=float(length))
                    )
        return rows


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
    samples = {"truth": truth}
    for model, prediction in inputs.predictions.items():
        if not is_broken(prediction, inputs.valid):
            samples[model] = pooled_values(prediction, inputs.valid)
    rows: list[MetricRow] = []
    reference: dict[str, float] = {}
    for model, sample in samples.items():
        wet = sample[sample > threshold]
        if wet.size:
            intensity = float(np.mean(wet, dtype=np.float64))
            reference.setdefault("wet_mean_intensity", intensity)
            rows.append(inputs.row(model, "wet_mean_intensity", NAME, intensity))
            if model != "truth":
                error = intensity - reference["wet_mean_intensity"]
                rows.append(inputs.row(model, "wet_mean_intensity_error", NAME, error))
    spells = DrySpellSums(inputs)
    spells.update(inputs)
    rows += spells.rows()
    return [r for r in rows if finite(r.value)]


def plot(rows: Sequence[MetricRow], inputs: EvalInputs) -> Figure | None:
    """Value histograms (left, log frequency), a QQ plot against the truth (middle) and, where dry spells
    were counted, their length distribution (right, log share of spells)."""
    histogram = [r for r in rows if r.metric == "histogram"]
    if not histogram:
        return None
    qq = {(r.model, r.quantile): r.value for r in rows if r.metric == "qq"}
    spells = [r for r in rows if r.metric == "dry_spell_hist" and r.bin is not None]
    fig = new_figure((16.0 if spells else 11.0, 4.0))
    axes = fig.subplots(1, 3 if spells else 2)
    left, right = axes[0], axes[1]
    models = list(dict.fromkeys(r.model for r in histogram))
    colours = inputs.colours(r.model for r in rows)
    for model in models:
        mine = [r for r in histogram if r.model == model and r.value > 0]
        left.semilogy([r.bin for r in mine], [r.value for r in mine], label=model, color=colours[model])
        if model != "truth":
            right.plot(
                [qq[("truth", q)] for q in QQ_LEVELS],
                [qq[(model, q)] for q in QQ_LEVELS],
                marker=".",
                label=model,
                color=colours[model],
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
    if spells:
        ax = axes[2]
        means = {r.model: r.value for r in rows if r.metric == "dry_spell_mean"}
        for model in dict.fromkeys(r.model for r in spells):
            mine = sorted((r for r in spells if r.model == model), key=lambda r: r.bin or 0)
            ax.semilogy(
                [r.bin for r in mine],
                [r.value for r in mine],
                marker=".",
                label=f"{model} (mean {means.get(model, float('nan')):.2g})",
                color=colours[model],
            )
        ax.set(
            title=f"{inputs.title}: dry spells (<= {inputs.wet_threshold:g} {inputs.units})",
            xlabel=f"spell length (time steps; {MAX_SPELL} = {MAX_SPELL} or more)",
            ylabel="share of spells",
        )
        ax.title.set_fontsize(9)
        ax.legend(fontsize=8)
    return fig


FAMILY = Family(NAME, compute, plot, needs_positive_definite=True)
compute_and_plot = FAMILY.compute_and_plot
