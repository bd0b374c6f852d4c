"""Per-variable statistics in one read of the data: a small pilot, then one pass of many-chunk tasks.

The pilot reads a few rows (time steps) spread over the split: about PILOT_VALUES values, at least
PILOT_ROWS rows (all rows of a small split). It gives the random subsample the Box-Cox lambda is fitted to,
a shift near the mean for the float64 sums, and the bin width of the histogram (its value range / bins).
The pass reads every row once, a group of about `task_values` values per task, and computes, chunk after
chunk of each group: count, moments (Chan-mergeable, float64), extremes, the minimum's atom, the wet count,
the moments of log(x + eps), sqrt(x) and the Box-Cox transform (x >= 0 only), and an aligned histogram
(stride_stats.histogram). Each slice of a task is one compiled loop for the moments, the minimum's atom,
the wet count and the histogram, and one for the transform sums (stride_stats.kernels), after float32 SIMD
log and exp for float32 data (their error against float64: _Transforms). Partials merge as a fixed tree,
so the table is the same on local threads and on a distributed cluster.

Why a histogram and not a sketch (e.g. DataSketches KLL): KLL's rank error is about 1.3 % of n at k = 200
(about 0.2 K at the median of the benchmark's t2m) and probabilistic; the histogram's error is bounded by
its bin width, deterministic, exactly mergeable and costs one counter increment per value.

Quantile error bound: for the fractional rank h = (n - 1) level, np.quantile interpolates between the order
statistics x_(k) and x_(k+1), k = floor(h); the histogram's reading lies in [x_(k) - w, x_(k+1) + w] (the
rank-k reading falls in the bin holding x_(k), and readings are monotone in h), so it is within w + the
local spacing of np.quantile's value, about one bin width where the values are dense. The bin width w is at
most (max - above) / bins when the pilot saw the full range (as the previous two-pass histogram over
[above, max]) and below (max - min) / bins otherwise. Levels on the minimum's atom (exact zeros of dry
precipitation) are exact.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import dask
import numpy as np
from threadpoolctl import threadpool_limits

from stride_contracts.stats import QUANTILE_LEVELS
from stride_stats.boxcox import fit_boxcox_lambda, sample_block
from stride_stats.histogram import AlignedHistogram
from stride_stats.kernels import bin_position, transform_sums, value_sums
from stride_stats.partials import Moments, merge_tree
from stride_stats.sources import ArraySource, Source, pilot_rows, row_groups

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
SLICE_VALUES = 1 << 18
"""Values handled at a time inside a task, so the float64 temporaries (2 MiB each) stay in cache."""
TASK_VALUES = 1 << 23
"""Default values per task (32 MiB of float32): hundreds of 64 KiB chunks read in one zarr selection."""
PILOT_VALUES_PER_SAMPLE = 4
"""The pilot reads at least this many values per Box-Cox sample value wanted, so the sample is a thin
random subset of many rows."""
PILOT_ROWS = 256
"""Fewest pilot rows (time steps), spread evenly over the split. Neighbouring time steps are alike, so
lambda's sampling error follows the number of rows more than the number of values: on the benchmark's
t2m (whose likelihood is flat in lambda) the sd of lambda over pilots at 12 row offsets was 0.26 with 64
rows, 0.07 with 256 and 0.035 with 512 (about 0.9 on all rows); 256 rows cost about 6 % more reading."""
SMALL_LAMBDA = 1e-3
"""Below this |lambda|, exp(lambda L) - 1 would lose digits: the Box-Cox moments use expm1 directly."""
FLOAT_POWER_LAMBDA = 0.05
"""From this |lambda| up, u^lambda is taken in the values' precision (float32): its spread, about
lambda u^lambda std(log u), is then far above the rounding of u^lambda (2^-24 u^lambda); nearer 0 the
float64 path keeps the digits."""


class NoValidValuesError(ValueError):
    """The variable has no finite value to describe."""


def variable_stats(
    values: Source | np.ndarray,
    *,
    log_eps: float,
    bins: int,
    wet_threshold: float | None = None,
    boxcox_shift: float = 0.01,
    max_samples: int = 1_000_000,
    seed: int = 0,
    task_values: int = TASK_VALUES,
) -> dict[str, Any]:
    """Every column of a stats row (contract `stride.stats`) but role, variable and units, for one variable.

    count, moments, extremes and wet count (finite values strictly above `wet_threshold`; None for
    variables that are not positive-definite) are exact; the log, sqrt and Box-Cox moments are over every
    finite value, for variables whose values are all >= 0, with lambda fitted to at most `max_samples`
    values drawn from the pilot rows. Quantiles follow np.quantile's linear rule to the bound in the module
    docstring; the minimum is an atom counted exactly, so a field that is exactly 0 on most cells has
    every quantile at or below the share of zeros exactly 0.
    """
    source = ArraySource(np.asarray(values)) if isinstance(values, np.ndarray) else values
    size = source.rows * source.row_size
    pilot = run_pilot(source, max_samples=max_samples, seed=seed, task_values=task_values)
    if pilot.n == 0:
        # The pilot rows hold no valid value; the pass still reads all rows (it may find some). Shift 0 and
        # a unit range: the histogram's level rises to fit whatever the pass finds.
        pilot = dataclasses.replace(pilot, total=0.0, low=0.0, high=1.0, above_low=1.0)
    plan = _plan(pilot, bins=bins, wet_threshold=wet_threshold, log_eps=log_eps, boxcox_shift=boxcox_shift)
    parts = [
        dask.delayed(_pass_task)(source, rows, plan)
        for rows in row_groups(source.rows, source.row_size, task_values)
    ]
    (total,) = dask.compute(merge_tree(parts))
    n = total.moments.n
    if n == 0:
        raise NoValidValuesError("no valid values")
    row: dict[str, Any] = {
        "count": n,
        "valid_fraction": n / size,
        "mean": total.moments.mean,
        "std": total.moments.std,
        "min": total.low,
        "max": total.high,
        "wet_fraction": None if wet_threshold is None else total.wet / n,
        "wet_threshold": wet_threshold,
    }
    row.update(zip(QUANTILE_COLUMNS, _quantiles(total), strict=True))
    if plan.transforms is None or total.low < 0:
        row.update(dict.fromkeys(NON_NEGATIVE_COLUMNS))
    else:
        for name, moments in total.transformed.items():
            row[f"{name}_mean"], row[f"{name}_std"] = moments.mean, moments.std
        row.update(log_eps=log_eps, boxcox_shift=boxcox_shift, boxcox_lambda=plan.transforms.boxcox_lambda)
    return row


# --- pilot ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pilot:
    n: int
    total: float
    low: float
    high: float
    above_low: float
    sample: np.ndarray

    def merge(self, other: Pilot) -> Pilot:
        low = min(self.low, other.low)
        above = min(part.above_low if part.low == low else part.low for part in (self, other))
        return Pilot(
            self.n + other.n,
            self.total + other.total,
            low,
            max(self.high, other.high),
            above,
            np.concatenate([self.sample, other.sample]),
        )


def run_pilot(source: Source, *, max_samples: int, seed: int, task_values: int) -> Pilot:
    rows = pilot_rows(
        source.rows, source.row_size, PILOT_VALUES_PER_SAMPLE * max_samples, min_rows=PILOT_ROWS
    )
    share = min(1.0, max_samples / max(rows.size * source.row_size, 1))
    groups = [rows[group] for group in row_groups(rows.size, source.row_size, task_values)]
    parts = [dask.delayed(_pilot_task)(source, group, share, seed) for group in groups]
    (pilot,) = dask.compute(merge_tree(parts))
    return dataclasses.replace(pilot, sample=pilot.sample[:max_samples])


def _pilot_task(source: Source, rows: np.ndarray, share: float, seed: int) -> Pilot:
    block = np.asarray(source.read(rows))
    sample = sample_block(block, (int(rows[0]),), share=share, seed=seed)
    valid = block.reshape(-1)
    low, high = valid.min(), valid.max()
    if not (np.isfinite(low) and np.isfinite(high)):
        valid = valid[np.isfinite(valid)]
        if valid.size == 0:
            return Pilot(0, 0.0, math.inf, -math.inf, math.inf, sample)
        low, high = valid.min(), valid.max()
    # The sum and the smallest value above the minimum in one compiled pass (a one-bin histogram).
    total, _, _, above, _ = value_sums(valid, 0.0, float(low), math.nan, 0.0, 0, np.zeros(1, dtype=np.int64))
    return Pilot(int(valid.size), total, float(low), float(high), above, sample)


# --- the pass ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Transforms:
    """The transforms whose moments the stats table holds (x >= 0), each summed about its shift.

    log and exp are taken in the values' own precision (float32 for every store stride-data writes: NumPy's
    SIMD loops, 3-4x faster than float64) and summed in float64 (kernels.transform_sums); sqrt is float64.
    The error against float64 transforms is a few float32 rounding steps of each value, which average out in
    the moments: measured on the real ERA5 and radar stores and tested against float64 (test_stats.py).
    """

    log_eps: float
    boxcox_shift: float
    boxcox_lambda: float
    centre: float
    """Near the mean of x: the transforms of it are the shifts of their sums."""

    def moments(self, x: np.ndarray, high: float) -> dict[str, Moments]:
        dtype = np.result_type(x.dtype, np.float32)
        log_x = np.log(np.add(x, dtype.type(self.log_eps), dtype=dtype))
        log_u = log_x if self.boxcox_shift == self.log_eps else np.log(x + dtype.type(self.boxcox_shift))
        lmbda = self.boxcox_lambda
        log_centre = math.log(self.centre + self.log_eps)
        u_centre = math.log(self.centre + self.boxcox_shift)
        # exp(lambda log u) in the values' precision when lambda is far enough from 0 for its spread to
        # dwarf the rounding of a value near 1, and the largest power stays far from float32's overflow.
        in_power = abs(lmbda) >= FLOAT_POWER_LAMBDA and lmbda * math.log(high + self.boxcox_shift) < 80
        power = np.exp(np.multiply(log_u, dtype.type(lmbda))) if in_power else np.empty(0, dtype)
        power_centre = math.exp(lmbda * u_centre)
        l1, l2, r1, r2, p1, p2 = transform_sums(
            x, log_x, power, log_centre, math.sqrt(self.centre), power_centre
        )
        n = int(x.size)
        log = Moments.of_sums(n, l1, l2, log_centre)
        if in_power:
            boxcox = Moments.of_sums(n, p1, p2, power_centre).scaled(-1.0, 1.0 / lmbda)
        elif lmbda == 0 and log_u is log_x:
            boxcox = log
        else:
            boxcox = self._small_lambda_moments(np.asarray(log_u, dtype=np.float64), u_centre)
        return {"log": log, "sqrt": Moments.of_sums(n, r1, r2, math.sqrt(self.centre)), "boxcox": boxcox}

    def _small_lambda_moments(self, log_u: np.ndarray, centre: float) -> Moments:
        """Moments of (u^lambda - 1) / lambda from log u in float64 for lambda near 0: expm1 for small
        lambda, log u itself at lambda = 0."""
        lmbda = self.boxcox_lambda
        if lmbda == 0:
            return Moments.of_shifted(log_u - centre, centre)
        power = np.multiply(log_u, lmbda)
        if abs(lmbda) < SMALL_LAMBDA:
            np.expm1(power, out=power)
            power /= lmbda
            shift = math.expm1(lmbda * centre) / lmbda
            power -= shift
            return Moments.of_shifted(power, shift)
        np.exp(power, out=power)
        shift = math.exp(lmbda * centre)
        power -= shift
        return Moments.of_shifted(power, shift).scaled(-1.0, 1.0 / lmbda)


@dataclass(frozen=True)
class _Plan:
    shift: float
    histogram: AlignedHistogram
    wet_threshold: float | None
    transforms: _Transforms | None


def _plan(
    pilot: Pilot, *, bins: int, wet_threshold: float | None, log_eps: float, boxcox_shift: float
) -> _Plan:
    shift = pilot.total / pilot.n if pilot.n else 0.0
    top = pilot.above_low if math.isfinite(pilot.above_low) else pilot.low
    span = pilot.high - top
    # A pilot with one distinct value gives no width: start fine, the level rises to the data's range.
    w0 = span / bins if span > 0 else max(abs(pilot.high), 1.0) * 2.0**-30
    histogram = AlignedHistogram(origin=shift, w0=w0, max_bins=2 * bins + 1)
    transforms = None
    if pilot.n == 0 or pilot.low >= 0:
        lmbda = fit_boxcox_lambda(pilot.sample, boxcox_shift)
        transforms = _Transforms(log_eps, boxcox_shift, lmbda, centre=max(shift, 0.0))
    return _Plan(shift, histogram, wet_threshold, transforms)


@dataclass(frozen=True)
class _Partial:
    """Statistics of some rows; at_low counts the values equal to low exactly, above_low is the smallest
    value above it (inf when none); the histogram counts the values above low, and low_bin is the bin
    (at the histogram's level) the atom goes to when a merge finds a lower minimum."""

    moments: Moments
    low: float
    high: float
    at_low: int
    above_low: float
    wet: int
    histogram: AlignedHistogram
    low_bin: int = 0
    transformed: dict[str, Moments] = field(default_factory=dict)

    def merge(self, other: _Partial) -> _Partial:
        low = min(self.low, other.low)
        # A part whose minimum lies above the merged minimum has no value at it: its minimum moves to the
        # values above the atom.
        at_low = sum(part.at_low for part in (self, other) if part.low == low)
        above = min(part.above_low if part.low == low else part.low for part in (self, other))
        histogram = self.histogram.merge(other.histogram)
        for part in (self, other):
            if part.low > low and part.at_low:
                histogram = histogram.add_at(part.low_bin, part.histogram.level, part.at_low)
        lowest = self if self.low == low else other
        names = sorted(self.transformed.keys() | other.transformed.keys())
        return _Partial(
            self.moments.merge(other.moments),
            low,
            max(self.high, other.high),
            at_low,
            above,
            self.wet + other.wet,
            histogram,
            lowest.low_bin >> (histogram.level - lowest.histogram.level),
            {
                name: self.transformed.get(name, Moments()).merge(other.transformed.get(name, Moments()))
                for name in names
            },
        )


def _pass_task(source: Source, rows: np.ndarray, plan: _Plan) -> _Partial:
    # One BLAS thread per task: Dask's threads already use every core, and a multi-threaded OpenBLAS dot
    # under them was measured 5x slower per value (threads spinning against each other).
    with threadpool_limits(limits=1, user_api="blas"):
        return _pass(np.asarray(source.read(rows)).reshape(-1), plan)


def _pass(values: np.ndarray, plan: _Plan) -> _Partial:
    empty = _Partial(Moments(), math.inf, -math.inf, 0, math.inf, 0, plan.histogram)
    if values.size == 0:
        return empty
    low, high = values.min(), values.max()
    if not (np.isfinite(low) and np.isfinite(high)):
        values = values[np.isfinite(values)]  # NaN outside coverage: the rare, slower path
        if values.size == 0:
            return empty
        low, high = values.min(), values.max()
    low, high = float(low), float(high)
    histogram, inverse_width = plan.histogram.empty_for(low, high)
    transforms = plan.transforms if low >= 0 else None
    wet_threshold = math.nan if plan.wet_threshold is None else plan.wet_threshold
    moments = Moments()
    transformed: dict[str, Moments] = {}
    at_low, above_low, wet = 0, math.inf, 0
    for start in range(0, values.size, SLICE_VALUES):
        x = values[start : start + SLICE_VALUES]
        # The histogram counts the values above the atom; the atom's are counted exactly in at_low.
        s1, s2, slice_at_low, slice_above, slice_wet = value_sums(
            x, plan.shift, low, wet_threshold, inverse_width, histogram.first, histogram.counts
        )
        moments = moments.merge(Moments.of_sums(int(x.size), s1, s2, plan.shift))
        at_low += slice_at_low
        above_low = min(above_low, slice_above)
        wet += slice_wet
        if transforms is not None:
            for name, part in transforms.moments(x, high).items():
                transformed[name] = transformed.get(name, Moments()).merge(part)
    low_position = bin_position(low, plan.shift, inverse_width, histogram.first, histogram.counts.size)
    return _Partial(
        moments, low, high, at_low, above_low, wet, histogram, histogram.first + low_position, transformed
    )


# --- quantiles --------------------------------------------------------------------------------------


def _quantiles(total: _Partial) -> list[float]:
    """np.quantile's linear rule: at_low values equal low exactly, the rest are in the histogram.

    The level's fractional rank h = (n - 1) level is exact; ranks inside the atom give low itself, ranks
    between the atom's last value and the smallest value above it interpolate between the two, and higher
    ranks are read from the histogram's cumulative counts of the values above the atom, whose outer edges
    are the exact smallest value above the atom and the maximum.
    """
    n, low, at_low = total.moments.n, total.low, total.at_low
    histogram = total.histogram
    counts = histogram.counts
    edges = histogram.edges()
    filled = np.flatnonzero(counts)
    if filled.size:
        counts = counts[filled[0] : filled[-1] + 1]
        edges = edges[filled[0] : filled[-1] + 2].copy()
        edges[0], edges[-1] = total.above_low, total.high
    above = n - at_low
    cumulative = np.concatenate([[0.0], np.cumsum(counts, dtype=np.float64)])
    quantiles = []
    for level in QUANTILE_LEVELS:
        h = (n - 1) * level
        if above == 0 or h <= at_low - 1:
            quantiles.append(low)
        elif h < at_low:
            quantiles.append(low + (h - (at_low - 1)) * (total.above_low - low))
        else:
            # Rank h - at_low among the values above the atom; the k-th of m values (0-based) sits at the
            # cumulative count k + 1/2 of a histogram whose values are spread evenly inside each bin.
            quantiles.append(float(np.interp(h - at_low + 0.5, cumulative, edges)))
    return quantiles
