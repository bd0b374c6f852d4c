"""Per-variable statistics computed chunk by chunk with Dask, so memory stays bounded on large stores."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import dask
import dask.array as da
import numpy as np

from stride_contracts.stats import QUANTILE_LEVELS
from stride_core.transforms import boxcox
from stride_stats.boxcox import fit_boxcox_lambda, sample_block, sample_share
from stride_stats.partials import Moments, reduce_blocks, valid_slices

QUANTILE_COLUMNS = tuple(f"q{round(level * 100):02d}" for level in QUANTILE_LEVELS)
NON_NEGATIVE_COLUMNS = (
    "log_mean",
    "log_std",
    "log_eps",
    "boxcox_lambda",
    "boxcox_shift",
    "boxcox_mean",
    "boxcox_std",
    "sqrt_mean",
    "sqrt_std",
)
"""Columns set only for variables whose valid values are all >= 0."""


class NoValidValuesError(ValueError):
    """The variable has no finite value to describe."""


def variable_stats(
    values: da.Array,
    *,
    log_eps: float,
    bins: int,
    wet_threshold: float | None = None,
    boxcox_shift: float = 0.01,
    max_samples: int = 1_000_000,
    seed: int = 0,
) -> dict[str, Any]:
    """Every column of a stats row (contract `stride.stats`) but role, variable and units, for one variable.

    Two passes, each one task per chunk merged as a tree. The first gives count, moments, extremes, the
    wet count (finite values strictly above `wet_threshold`; None for variables that are not
    positive-definite) and the random subsample of `random_subsample`. If every finite value is >= 0, the
    Box-Cox lambda of x + `boxcox_shift` is fitted to that subsample in memory. The second pass fills a
    fixed-range histogram, from which the quantiles are read by linear interpolation (exact to one bin
    width), and, for x >= 0, the moments of log(x + log_eps), sqrt(x) and the Box-Cox transform over every
    finite value.

    The minimum is an atom counted exactly: a field that is exactly 0 on most cells (dry precipitation) has
    every quantile at or below the share of zeros exactly 0, not a value interpolated inside the first
    histogram bin. The histogram holds only the values above the minimum, over [the smallest of them, max],
    and the quantile levels above the atom are read from it (np.quantile's linear rule, to one bin width).
    """
    if values.ndim == 0:
        values = values.reshape(1)
    share = sample_share(values, max_samples)
    (summary,) = dask.compute(
        reduce_blocks(values, _summarise_block, wet_threshold=wet_threshold, share=share, seed=seed)
    )
    moments = summary.moments
    if moments.n == 0:
        raise NoValidValuesError("no valid values")
    row: dict[str, Any] = {
        "count": moments.n,
        "valid_fraction": moments.n / values.size,
        "mean": moments.mean,
        "std": moments.std,
        "min": summary.low,
        "max": summary.high,
        "wet_fraction": None if wet_threshold is None else summary.wet / moments.n,
        "wet_threshold": wet_threshold,
    }
    above = summary.above_low if math.isfinite(summary.above_low) else summary.low
    span = (above, summary.high if summary.high > above else above + 1.0)
    params = None
    if summary.low >= 0:
        lmbda = fit_boxcox_lambda(summary.sample[:max_samples], boxcox_shift)
        params = _TransformParams(log_eps=log_eps, boxcox_shift=boxcox_shift, boxcox_lambda=lmbda)
    (distribution,) = dask.compute(
        reduce_blocks(values, _distribute_block, bins=bins, span=span, low=summary.low, params=params)
    )
    edges = np.linspace(span[0], span[1], bins + 1)
    quantiles = _histogram_quantiles(
        distribution.counts, edges, low=summary.low, at_low=summary.at_low, n=moments.n
    )
    row.update(zip(QUANTILE_COLUMNS, quantiles, strict=True))
    if params is None:
        row.update(dict.fromkeys(NON_NEGATIVE_COLUMNS))
    else:
        for name, transformed in distribution.transformed.items():
            row[f"{name}_mean"], row[f"{name}_std"] = transformed.mean, transformed.std
        row.update(log_eps=log_eps, boxcox_shift=boxcox_shift, boxcox_lambda=params.boxcox_lambda)
    return row


@dataclass(frozen=True)
class _Summary:
    """Moments, extremes, wet count and subsample of some chunks; at_low counts the values equal to low
    exactly and above_low is the smallest value above it (inf when there is none)."""

    moments: Moments
    low: float
    high: float
    wet: int
    sample: np.ndarray
    at_low: int = 0
    above_low: float = math.inf

    def merge(self, other: _Summary) -> _Summary:
        low = min(self.low, other.low)
        # A part whose minimum lies above the merged minimum has no value at it: its minimum (and count) moves
        # to the values above the atom.
        at_low = sum(part.at_low for part in (self, other) if part.low == low)
        above = min(part.above_low if part.low == low else part.low for part in (self, other))
        return _Summary(
            self.moments.merge(other.moments),
            low,
            max(self.high, other.high),
            self.wet + other.wet,
            np.concatenate([self.sample, other.sample]),
            at_low,
            above,
        )


def _summarise_block(
    block: np.ndarray, location: tuple[int, ...], *, wet_threshold: float | None, share: float, seed: int
) -> _Summary:
    summary = _Summary(Moments(), math.inf, -math.inf, 0, np.empty(0))
    for valid in valid_slices(block):
        if valid.size:
            low = float(valid.min())
            above = valid[valid > low]
            summary = summary.merge(
                _Summary(
                    Moments.of(valid),
                    low,
                    float(valid.max()),
                    0 if wet_threshold is None else int(np.count_nonzero(valid > wet_threshold)),
                    np.empty(0),
                    valid.size - above.size,
                    float(above.min()) if above.size else math.inf,
                )
            )
    sample = sample_block(block, location, share=share, seed=seed)
    return dataclasses.replace(summary, sample=sample)


@dataclass(frozen=True)
class _TransformParams:
    log_eps: float
    boxcox_shift: float
    boxcox_lambda: float

    def apply(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """The transforms whose moments the stats table holds, named as its column prefixes."""
        return {
            "log": np.log(x + self.log_eps),
            "sqrt": np.sqrt(x),
            "boxcox": boxcox(x + self.boxcox_shift, self.boxcox_lambda),
        }


@dataclass(frozen=True)
class _Distribution:
    counts: np.ndarray
    transformed: dict[str, Moments] = field(default_factory=dict)

    def merge(self, other: _Distribution) -> _Distribution:
        names = self.transformed.keys() | other.transformed.keys()
        return _Distribution(
            self.counts + other.counts,
            {
                name: self.transformed.get(name, Moments()).merge(other.transformed.get(name, Moments()))
                for name in sorted(names)
            },
        )


def _distribute_block(
    block: np.ndarray,
    location: tuple[int, ...],
    *,
    bins: int,
    span: tuple[float, float],
    low: float,
    params: _TransformParams | None,
) -> _Distribution:
    distribution = _Distribution(np.zeros(bins, dtype=np.int64))
    for valid in valid_slices(block):
        counts, _ = np.histogram(valid[valid > low], bins=bins, range=span)
        transformed = {} if params is None else params.apply(valid)
        distribution = distribution.merge(
            _Distribution(counts, {name: Moments.of(t) for name, t in transformed.items()})
        )
    return distribution


def _histogram_quantiles(
    counts: np.ndarray, edges: np.ndarray, *, low: float, at_low: int, n: int
) -> list[float]:
    """Quantiles by np.quantile's linear rule: at_low values equal low exactly, the rest are in the histogram.

    The level's fractional rank h = (n - 1) level is exact; ranks inside the atom give low itself, ranks
    between the atom's last value and the smallest value above it interpolate between the two, and higher
    ranks are read from the histogram's cumulative counts of the values above the atom.
    """
    above = n - at_low
    cumulative = np.concatenate([[0.0], np.cumsum(counts, dtype=np.float64)])
    quantiles = []
    for level in QUANTILE_LEVELS:
        h = (n - 1) * level
        if above == 0 or h <= at_low - 1:
            quantiles.append(low)
        elif h < at_low:
            quantiles.append(low + (h - (at_low - 1)) * (edges[0] - low))
        else:
            # Rank h - at_low among the values above the atom; the k-th of m values (0-based) sits at the
            # cumulative count k + 1/2 of a histogram whose values are spread evenly inside each bin.
            quantiles.append(float(np.interp(h - at_low + 0.5, cumulative, edges)))
    return quantiles
