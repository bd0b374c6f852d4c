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
from stride_core.metrics import weighted_mean
from stride_eval.families.base import Family, finite
from stride_eval.inputs import EvalInputs

NAME = "temporal"
MIN_PAIRS = 3


class PairSums:
    """Per-pixel sums over the date pairs of one lag (n, sum a, sum b, sum a^2, sum b^2, sum ab) of one series.

    Pairs are added chunk by chunk; Pearson's r follows from the sums. Only pairs where both are finite count,
    as in `stride_core.metrics.pointwise_correlation`.
    """

    def __init__(self) -> None:
        self.sums: list[np.ndarray] | None = None

    def add(self, a: np.ndarray, b: np.ndarray) -> None:
        a = np.asarray(a, dtype=np.float64)
        b = np.asarray(b, dtype=np.float64)
        keep = np.isfinite(a) & np.isfinite(b)
        a, b = np.where(keep, a, 0.0), np.where(keep, b, 0.0)
        terms = [
            keep.sum(axis=0).astype(np.float64),
            a.sum(0),
            b.sum(0),
            (a * a).sum(0),
            (b * b).sum(0),
            (a * b).sum(0),
        ]
        self.sums = terms if self.sums is None else [x + y for x, y in zip(self.sums, terms, strict=True)]

    def mean_correlation(self, weights: np.ndarray) -> float:
        """Area-weighted mean over pixels of r (for [member, H, W] sums, of the members' mean r)."""
        if self.sums is None:
            return float("nan")
        n, sa, sb, saa, sbb, sab = self.sums
        with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            # Centred sums (sum (a - mean a)^2 = saa - sa^2 / n), as pointwise_correlation computes them.
            r = (sab - sa * sb / n) / np.sqrt((saa - sa * sa / n) * (sbb - sb * sb / n))
            r = np.where(n >= 2, r, np.nan)
            if r.ndim == 3:  # [member, H, W]: the members' mean
                r = np.nanmean(r, axis=0)
        return weighted_mean(r, weights)


class TemporalSums:
    """Lag-k pair sums of the truth and every model over chunks of dates (consecutive, in order).

    The date pairs are those of the whole run (`template.consecutive_pairs`); the last max(lags) dates of a
    chunk are kept so pairs straddling two chunks count. `compute` is one chunk of every date.
    """

    def __init__(self, template: EvalInputs) -> None:
        self.template = template
        self.pairs = {lag: template.consecutive_pairs(lag) for lag in template.lags}
        self.position = {time: i for i, time in enumerate(template.times)}
        self.keep = max(template.lags, default=0)
        self.tail: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        """series name -> (global date indices, fields) of the previous chunk's last dates."""
        self.sums: dict[tuple[str, int], PairSums] = {}

    def update(self, chunk: EvalInputs) -> None:
        index = np.array([self.position[t] for t in chunk.times], dtype=np.int64)
        series = {"truth": chunk.truth, **{m: p.fields for m, p in chunk.predictions.items()}}
        for name, fields in series.items():
            previous_index, previous = self.tail.get(name, (index[:0], fields[:0]))
            joined_index = np.concatenate([previous_index, index])
            joined = np.concatenate([previous, fields]) if previous.size else fields
            where = {int(g): i for i, g in enumerate(joined_index)}
            for lag, (first, second) in self.pairs.items():
                # The pairs whose later date is in this chunk (each pair counted once).
                new = np.isin(second, index) & np.isin(first, joined_index)
                if new.any():
                    a = joined[[where[int(g)] for g in first[new]]]
                    b = joined[[where[int(g)] for g in second[new]]]
                    self.sums.setdefault((name, lag), PairSums()).add(a, b)
            self.tail[name] = (
                (joined_index[-self.keep :], joined[-self.keep :]) if self.keep else (index[:0], fields[:0])
            )

    def rows(self) -> list[MetricRow]:
        inputs = self.template
        rows: list[MetricRow] = []
        models = [name for name in dict.fromkeys(name for name, _ in self.sums) if name != "truth"]
        for lag, (first, _) in self.pairs.items():
            if first.size < MIN_PAIRS or ("truth", lag) not in self.sums:
                continue
            reference = self.sums["truth", lag].mean_correlation(inputs.weights)
            if not finite(reference):
                continue
            rows.append(inputs.row("truth", "autocorrelation", NAME, reference, units="1", lag=float(lag)))
            for model in models:
                if (model, lag) not in self.sums:
                    continue
                value = self.sums[model, lag].mean_correlation(inputs.weights)
                if finite(value):
                    rows.append(inputs.row(model, "autocorrelation", NAME, value, units="1", lag=float(lag)))
                    rows.append(
                        inputs.row(
                            model, "autocorrelation_error", NAME, value - reference, units="1", lag=float(lag)
                        )
                    )
        return rows


def compute(inputs: EvalInputs) -> list[MetricRow]:
    sums = TemporalSums(inputs)
    sums.update(inputs)
    return sums.rows()


def plot(rows: Sequence[MetricRow], inputs: EvalInputs) -> Figure | None:
    """Autocorrelation against lag, one line per model, the truth in black."""
    values = [r for r in rows if r.metric == "autocorrelation"]
    if not values:
        return None
    fig = new_figure((5.5, 4.0))
    ax = fig.subplots()
    colours = inputs.colours(r.model for r in rows)
    for model in list(dict.fromkeys(r.model for r in values)):
        mine = sorted((r for r in values if r.model == model), key=lambda r: r.lag or 0)
        ax.plot(
            [float(r.lag or 0) for r in mine],
            [r.value for r in mine],
            marker="o",
            label=model,
            color=colours[model],
        )
    ax.set(title=f"{inputs.title}: autocorrelation", xlabel="lag (time steps)", ylabel="mean correlation")
    ax.legend(fontsize=8)
    return fig


FAMILY = Family(NAME, compute, plot)
compute_and_plot = FAMILY.compute_and_plot
