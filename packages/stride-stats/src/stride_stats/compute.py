"""Per-variable statistics computed chunk by chunk with Dask, so memory stays bounded on large stores."""

from __future__ import annotations

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
    width, (max - min) / bins), and, for x >= 0, the moments of log(x + log_eps), sqrt(x) and the Box-Cox
    transform over every finite value.
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
    span = (summary.low, summary.high if summary.high > summary.low else summary.low + 1.0)
    params = None
    if summary.low >= 0:
        lmbda = fit_boxcox_lambda(summary.sample[:max_samples], boxcox_shift)
        params = _TransformParams(log_eps=log_eps, boxcox_shift=boxcox_shift, boxcox_lambda=lmbda)
    (distribution,) = dask.compute(
        reduce_blocks(values, _distribute_block, bins=bins, span=span, params=params)
    )
    edges = np.linspace(span[0], span[1], bins + 1)
    row.update(zip(QUANTILE_COLUMNS, _histogram_quantiles(distribution.counts, edges), strict=True))
    if params is None:
        row.update(dict.fromkeys(NON_NEGATIVE_COLUMNS))
    else:
        for name, transformed in distribution.transformed.items():
            row[f"{name}_mean"], row[f"{name}_std"] = transformed.mean, transformed.std
        row.update(log_eps=log_eps, boxcox_shift=boxcox_shift, boxcox_lambda=params.boxcox_lambda)
    return row


@dataclass(frozen=True)
class _Summary:
    moments: Moments
    low: float
    high: float
    wet: int
    sample: np.ndarray

    def merge(self, other: _Summary) -> _Summary:
        return _Summary(
            self.moments.merge(other.moments),
            min(self.low, other.low),
            max(self.high, other.high),
            self.wet + other.wet,
            np.concatenate([self.sample, other.sample]),
        )


def _summarise_block(
    block: np.ndarray, location: tuple[int, ...], *, wet_threshold: float | None, share: float, seed: int
) -> _Summary:
    moments, low, high, wet = Moments(), math.inf, -math.inf, 0
    for valid in valid_slices(block):
        if valid.size:
            moments = moments.merge(Moments.of(valid))
            low, high = min(low, float(valid.min())), max(high, float(valid.max()))
            if wet_threshold is not None:
                wet += int(np.count_nonzero(valid > wet_threshold))
    return _Summary(moments, low, high, wet, sample_block(block, location, share=share, seed=seed))


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
    params: _TransformParams | None,
) -> _Distribution:
    distribution = _Distribution(np.zeros(bins, dtype=np.int64))
    for valid in valid_slices(block):
        counts, _ = np.histogram(valid, bins=bins, range=span)
        transformed = {} if params is None else params.apply(valid)
        distribution = distribution.merge(
            _Distribution(counts, {name: Moments.of(t) for name, t in transformed.items()})
        )
    return distribution


def _histogram_quantiles(counts: np.ndarray, edges: np.ndarray) -> list[float]:
    cumulative = np.concatenate([[0.0], np.cumsum(counts, dtype=np.float64)])
    cumulative /= cumulative[-1]
    return [float(np.interp(level, cumulative, edges)) for level in QUANTILE_LEVELS]
