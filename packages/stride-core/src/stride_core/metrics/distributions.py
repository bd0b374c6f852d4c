"""Distribution and time-series statistics: Wasserstein-1, Perkins skill score, dry spells, autocorrelation."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from stride_core.metrics.spatial import pointwise_correlation


def _finite_sample(values: ArrayLike) -> NDArray[np.float64]:
    flat = np.asarray(values, dtype=np.float64).ravel()
    return flat[np.isfinite(flat)]


def wasserstein_1(a: ArrayLike, b: ArrayLike) -> float:
    r"""Wasserstein-1 (earth mover's) distance between the empirical distributions of two samples.

        W1 = \int |F_a(x) - F_b(x)| dx

    the area between the two empirical CDFs, exact for samples of any sizes (NaN values are left out),
    in the samples' units. NaN if either sample is empty. `scipy.stats.wasserstein_distance` computes
    the same quantity; this one runs in float64 on numpy alone so stride-core needs no scipy.
    """
    x, y = np.sort(_finite_sample(a)), np.sort(_finite_sample(b))
    if x.size == 0 or y.size == 0:
        return float("nan")
    support = np.sort(np.concatenate([x, y]))
    widths = np.diff(support)
    cdf_x = np.searchsorted(x, support[:-1], side="right") / x.size
    cdf_y = np.searchsorted(y, support[:-1], side="right") / y.size
    return float(np.sum(np.abs(cdf_x - cdf_y) * widths))


def common_bins(a: ArrayLike, b: ArrayLike, *, n_bins: int) -> NDArray[np.float64]:
    """`n_bins` equal-width bin edges spanning both samples' finite values."""
    x, y = _finite_sample(a), _finite_sample(b)
    both = np.concatenate([x, y])
    if both.size == 0:
        return np.linspace(0.0, 1.0, n_bins + 1)
    low, high = float(both.min()), float(both.max())
    if high <= low:
        high = low + 1.0
    return np.linspace(low, high, n_bins + 1)


def perkins_skill_score(model: ArrayLike, truth: ArrayLike, *, edges: ArrayLike) -> float:
    r"""Perkins skill score: the overlap of two binned relative-frequency distributions.

        S = sum_bins min(Z_model, Z_truth)

    with Z the share of each sample in each bin of `edges` (values outside the edges are left out).
    1 is identical distributions, 0 no overlap. The score depends on the bins: use the same edges for
    every model (e.g. `common_bins` of the truth and the model, or fixed ones per variable).

    Reference:
        Perkins, S. E., Pitman, A. J., Holbrook, N. J. and McAneney, J. (2007): Evaluation of the AR4
        climate models' simulated daily maximum temperature, minimum temperature, and precipitation over
        Australia using probability density functions. J. Climate 20, 4356-4376.
    """
    bin_edges = np.asarray(edges, dtype=np.float64)
    z_model = relative_histogram(model, bin_edges)
    z_truth = relative_histogram(truth, bin_edges)
    return float(np.sum(np.minimum(z_model, z_truth)))


def relative_histogram(values: ArrayLike, edges: NDArray[np.float64]) -> NDArray[np.float64]:
    """Share of the finite values in each bin of `edges` (shares of all finite values, so they sum to <= 1)."""
    sample = _finite_sample(values)
    if sample.size == 0:
        return np.zeros(edges.size - 1)
    counts, _ = np.histogram(sample, bins=edges)
    return np.asarray(counts / sample.size, dtype=np.float64)


def dry_spell_lengths(series: ArrayLike, *, threshold: float, axis: int = 0) -> NDArray[np.int64]:
    """Lengths (in steps) of every run of dry steps (value <= threshold) along `axis`, at every pixel.

    `series` must hold consecutive steps along `axis`. A NaN step ends a spell and does not start one;
    spells cut by the start or end of the series count with the length seen.
    """
    values = np.moveaxis(np.asarray(series, dtype=np.float64), axis, -1)
    dry = (values <= threshold) & np.isfinite(values)
    flat = dry.reshape(-1, dry.shape[-1]).astype(np.int8)
    padded = np.pad(flat, ((0, 0), (1, 1)))
    change = np.diff(padded, axis=1)
    starts = np.nonzero(change == 1)
    ends = np.nonzero(change == -1)
    # np.nonzero walks rows in order, and every start in a row has its end in the same row, after it.
    return np.asarray(ends[1] - starts[1], dtype=np.int64)


def lag_autocorrelation(series: ArrayLike, *, lag: int, axis: int = 0) -> NDArray[np.float64]:
    """Pearson correlation of x[t] with x[t + lag] along `axis` at every pixel (consecutive steps assumed)."""
    values = np.moveaxis(np.asarray(series, dtype=np.float64), axis, 0)
    if not 1 <= lag < values.shape[0] - 1:
        raise ValueError(
            f"lag {lag} must be in 1..{values.shape[0] - 2} for a series of {values.shape[0]} steps"
        )
    return pointwise_correlation(values[:-lag], values[lag:], axis=0)


def quantiles(values: ArrayLike, levels: ArrayLike) -> NDArray[np.floating[Any]]:
    """Quantiles of the finite values (numpy's default linear interpolation); NaN if there are none."""
    sample = _finite_sample(values)
    probs = np.asarray(levels, dtype=np.float64)
    if sample.size == 0:
        return np.full(probs.shape, np.nan)
    return np.asarray(np.quantile(sample, probs), dtype=np.float64)


def block_maxima(values: ArrayLike, blocks: ArrayLike) -> tuple[NDArray[np.float64], NDArray[Any]]:
    """Maximum of `values` [time, ...] over the dates of each block (e.g. each year), at every point.

    `blocks` [time] labels each date's block. NaN values are skipped; a point that is NaN on every date of
    a block is NaN there. Returns (maxima [n_blocks, ...], the block labels in sorted order).
    """
    data = np.asarray(values)
    labels = np.asarray(blocks)
    if labels.shape != data.shape[:1]:
        raise ValueError(f"blocks shape {labels.shape} does not match the time axis of values {data.shape}")
    names = np.unique(labels)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN points stay NaN
        maxima = np.stack([np.fmax.reduce(data[labels == name], axis=0) for name in names])
    return maxima.astype(np.float64, copy=False), names
