"""Probabilistic scores of an ensemble against truth: fair CRPS and the spread-skill ratio."""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from stride_core.metrics import _crps_kernel
from stride_core.metrics._checks import masked_mean, normalize_axes, normalize_axis, split_members


def crps_ensemble_fair(ensemble: ArrayLike, truth: ArrayLike, *, member_axis: int) -> NDArray[np.float64]:
    r"""Fair (unbiased) ensemble CRPS at every point.

    The CRPS of a forecast distribution F at the observation y is

        CRPS(F, y) = E|X - y| - 1/2 E|X - X'|,   X, X' ~ F independent.

    From m members x_1..x_m the fair estimator averages the spread term over the m(m-1) pairs
    i != j instead of all m^2 pairs (Ferro 2014; Zamo & Naveau 2018, "CRPS_fair"):

        CRPS_fair = 1/m sum_i |x_i - y|  -  1/(2 m (m-1)) sum_{i,j} |x_i - x_j|.

    It is an unbiased estimate of the CRPS of the distribution the members are drawn from, so
    ensembles of different sizes score alike. With the members sorted, x_(1) <= ... <= x_(m),
    sum_{i,j} |x_i - x_j| = 2 sum_k (2k - m - 1) x_(k), which costs O(m log m) time and O(m)
    memory per point instead of O(m^2). For m == 1 the spread term is undefined and the score is
    |x_1 - y|, the absolute error of the single member.

    float32 ensembles of 2 to `_crps_kernel.KERNEL_MAX_MEMBERS` members are scored by a compiled
    kernel that sorts each point's members in registers (`stride_core.metrics._crps_kernel`). Other
    ensembles are scored in blocks of about CRPS_BLOCK_POINTS, each copied once (members x points, in
    the input precision), sorted by a vectorised sorting network and summed in float64 (see
    `_crps_fair_block`). Either way memory beyond the output stays a few MiB. bench/eval_speed.py times
    it against properscoring and xskillscore.

    References:
        Ferro, C. A. T. (2014): Fair scores for ensemble forecasts. Q. J. R. Meteorol. Soc. 140,
        1917-1923. Zamo, M. and Naveau, P. (2018): Estimation of the continuous ranked probability
        score with limited information and applications to ensemble weather forecasts. Math.
        Geosci. 50, 209-234.

    Args:
        ensemble: members along `member_axis`; the other axes have the shape of `truth`.
        truth: observed values. NaN marks an invalid point, whose score is NaN.
        member_axis: the axis of `ensemble` that holds the members.

    Returns:
        The score at each point, shape `truth.shape`, float64. A NaN member makes that point NaN.
    """
    ens = np.asarray(ensemble)
    obs = np.asarray(truth)
    if ens.ndim != obs.ndim + 1:
        raise ValueError(
            f"ensemble must have one more axis (members) than truth: ensemble shape {ens.shape}, "
            f"truth shape {obs.shape}"
        )
    members = np.moveaxis(ens, normalize_axis(member_axis, ens.ndim, name="member_axis"), 0)
    if members.shape[1:] != obs.shape or members.shape[0] < 1:
        raise ValueError(
            f"ensemble shape {ens.shape} without member_axis={member_axis} is {members.shape[1:]}, "
            f"which does not match truth shape {obs.shape} (or has no members)"
        )
    m = members.shape[0]
    dtype = np.result_type(members.dtype, obs.dtype, np.float32)
    members = members.reshape(m, 1) if obs.ndim == 0 else members
    obs = obs.reshape(1) if obs.ndim == 0 else obs
    out = np.empty(obs.shape, dtype=np.float64)
    flat_out = out.reshape(-1)
    kernel = _crps_kernel.crps_fair_kernel(m, _sorting_network(m)) if dtype == np.float32 else None
    if kernel is not None:
        # One call per leading-axis slice (one date of [time, H, W]); a slice of [time, member, H, W]
        # is contiguous, of another layout copied (one slice at a time).
        rows = members.reshape(m, 1, -1) if obs.ndim == 1 else members
        slices = obs.reshape(1, -1) if obs.ndim == 1 else obs
        per_slice = slices[0].size
        for t in range(slices.shape[0]):
            kernel(
                np.ascontiguousarray(rows[:, t].reshape(m, -1), dtype=np.float32),
                np.ascontiguousarray(slices[t].reshape(-1), dtype=np.float32),
                flat_out[t * per_slice : (t + 1) * per_slice],
            )
        return out.reshape(np.shape(truth))
    coefficients = _crps_coefficients(m)
    # Blocks of whole leading-axis slices of about CRPS_BLOCK_POINTS points, and within one slice
    # (one date of a [time, H, W] field) runs of CRPS_BLOCK_POINTS points.
    per_slice = max(1, obs[0].size)
    step = max(1, CRPS_BLOCK_POINTS // per_slice)
    for start in range(0, obs.shape[0], step):
        stop = min(start + step, obs.shape[0])
        block = members[:, start:stop].reshape(m, -1)
        block_obs = obs[start:stop].reshape(-1)
        for first in range(0, block_obs.size, CRPS_BLOCK_POINTS):
            last = min(first + CRPS_BLOCK_POINTS, block_obs.size)
            offset = start * per_slice
            flat_out[offset + first : offset + last] = _crps_fair_block(
                np.array(block[:, first:last], dtype=dtype, order="C"),
                block_obs[first:last].astype(dtype, copy=False),
                coefficients,
            )
    return out.reshape(np.shape(truth))


CRPS_BLOCK_POINTS = 1 << 13
"""Points per block of `crps_ensemble_fair` (16 float32 members: 512 KiB, about a core's L2 cache)."""


def _crps_coefficients(m: int) -> NDArray[np.float64]:
    """Weights of [max(x_k, y), k <= m; x_(k), k <= m] in the fair CRPS plus y (see _crps_fair_block)."""
    rank = np.arange(1, m + 1)
    spread = (2.0 * rank - m - 1) / (m * (m - 1)) if m > 1 else np.zeros(1)
    return np.concatenate([np.full(m, 2.0 / m), -(1.0 / m + spread)])


def _crps_fair_block(
    members: NDArray[np.floating], obs: NDArray[np.floating], coefficients: NDArray[np.float64]
) -> NDArray[np.float64]:
    r"""Fair CRPS of a [m, points] block (sorted in place) against obs [points].

    With |x - y| = 2 max(x, y) - x - y, the score is

        CRPS_fair = 2/m sum_k max(x_k, y) - y - sum_k (1/m + (2k - m - 1) / (m (m - 1))) x_(k),

    where max and the sort are exact in the input precision, and the one weighted sum (a
    matrix-vector product) runs in float64. The members are sorted along the member axis by
    Batcher's odd-even merge network, each comparator a vectorised min/max of two rows over all the
    block's points; NaN propagates through min and max, so a NaN member or truth gives NaN.
    """
    m = members.shape[0]
    terms = np.empty((2 * m, obs.size), dtype=np.float64)
    np.maximum(members, obs, out=terms[:m])  # before the sort scrambles `members`
    rows = list(members)
    spare = np.empty_like(rows[0])
    for i, j in _sorting_network(m):
        low = np.minimum(rows[i], rows[j], out=spare)
        np.maximum(rows[i], rows[j], out=rows[j])
        spare, rows[i] = rows[i], low
    for k, row in enumerate(rows):
        terms[m + k] = row
    return coefficients @ terms - obs


@functools.cache
def _sorting_network(n: int) -> tuple[tuple[int, int], ...]:
    """Comparators (i, j), i < j, of Batcher's odd-even merge sort for n inputs, in order.

    The network for the next power of two with every comparator touching an index >= n dropped: the
    dropped inputs act as +inf, which no comparator moves. O(n log^2 n) comparators (63 for n = 16).
    """
    pairs = []
    p = 1
    while p < n:
        k = p
        while k >= 1:
            for j in range(k % p, n - k, 2 * k):
                for i in range(min(k, n - j - k)):
                    if (i + j) // (2 * p) == (i + j + k) // (2 * p):
                        pairs.append((i + j, i + j + k))
            k //= 2
        p *= 2
    return tuple(pairs)


def spread_skill_ratio(
    ensemble: ArrayLike,
    truth: ArrayLike,
    *,
    member_axis: int,
    reduce_axes: int | Sequence[int] | None = None,
) -> float | NDArray[np.float64]:
    r"""Spread-skill ratio with the finite-ensemble correction.

        SSR = sqrt((m + 1) / m * mean(s^2)) / sqrt(mean((xbar - y)^2))

    where s^2 is the unbiased (ddof=1) variance of the m members at a point, xbar their mean and
    both means run over the valid points of `reduce_axes`. The RMSE of the mean of m members drawn
    from the same distribution as the truth is sqrt((m + 1) / m) times the true spread (Fortin et
    al. 2014), so with the factor a calibrated ensemble scores 1 at any m; below 1 is
    under-dispersive (over-confident), above 1 over-dispersive. The ratio is of the means over
    points, not a mean of pointwise ratios.

    Reference:
        Fortin, V., Abaza, M., Anctil, F. and Turcotte, R. (2014): Why should ensemble spread match
        the RMSE of the ensemble mean? J. Hydrometeor. 15, 1708-1713.

    Args:
        ensemble: members along `member_axis`; the other axes have the shape of `truth`; m >= 2.
        truth: observed values; NaN marks invalid points, excluded from both means.
        member_axis: the axis of `ensemble` that holds the members.
        reduce_axes: axes *of truth* to average over; None averages over all points.

    Returns:
        A float when `reduce_axes` is None, else an array over the axes of `truth` not reduced.
        NaN where no point is valid, or where a member is NaN at a valid point.
    """
    members, obs, m = split_members(ensemble, truth, member_axis=member_axis)
    if m < 2:
        raise ValueError(
            f"spread_skill_ratio needs at least 2 members, got ensemble shape {np.shape(ensemble)} "
            f"with {m} member along member_axis={member_axis}"
        )
    axes = None if reduce_axes is None else normalize_axes(reduce_axes, obs.ndim, name="reduce_axes")
    valid = ~np.isnan(obs)
    variance = np.var(members, axis=0, ddof=1)
    squared_error = (np.mean(members, axis=0) - obs) ** 2
    spread2 = masked_mean(variance, valid, axes)
    mse = masked_mean(squared_error, valid, axes)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.sqrt((m + 1) / m * spread2) / np.sqrt(mse)
    if reduce_axes is None:
        return float(ratio)
    return np.asarray(ratio, dtype=np.float64)


def rank_histogram(ensemble: ArrayLike, truth: ArrayLike, *, member_axis: int) -> NDArray[np.float64]:
    """Talagrand rank histogram: how often the truth falls at each of the m + 1 ranks among the members.

    At each valid point the truth's rank is the number of members strictly below it. Ties (common for
    precipitation: many members and the truth at exactly 0) are spread evenly over the tied ranks
    b .. b + e (b members below, e equal), each getting 1 / (e + 1), the convention of `scores`'
    `rank_histogram` (Hamill 2001 recommends random tie-breaking; this is its expectation). Points
    with NaN truth are left out; a NaN member makes its point count nowhere.

    Reference:
        Hamill, T. M. (2001): Interpretation of rank histograms for verifying ensemble forecasts.
        Mon. Wea. Rev. 129, 550-560.

    Returns:
        Relative frequencies of ranks 0..m (summing to 1), shape (m + 1,); NaN if no point is valid.
    """
    counts = rank_counts(ensemble, truth, member_axis=member_axis)
    total = counts.sum()
    if total == 0:
        return np.full(counts.size, np.nan)
    return np.asarray(counts / total, dtype=np.float64)


def rank_counts(ensemble: ArrayLike, truth: ArrayLike, *, member_axis: int) -> NDArray[np.float64]:
    """The (m + 1,) rank counts behind `rank_histogram` (ties spread evenly), summable over batches."""
    members, obs, m = split_members(ensemble, truth, member_axis=member_axis)
    usable = ~np.isnan(obs) & ~np.isnan(members).any(axis=0)
    members, obs = members[:, usable], obs[usable]
    below = np.sum(members < obs, axis=0)
    equal = np.sum(members == obs, axis=0)
    share = 1.0 / (equal + 1.0)
    counts = np.array(
        [np.sum(np.where((below <= r) & (r <= below + equal), share, 0.0)) for r in range(m + 1)]
    )
    return np.asarray(counts, dtype=np.float64)


def rank_histogram_flatness(frequencies: ArrayLike, n_points: int) -> float:
    r"""Candille and Talagrand's delta: the squared departure of a rank histogram from flat, normalised.

        delta = sum_k (s_k - M / (m + 1))^2 / (M m / (m + 1))

    with s_k the counts of the m + 1 ranks and M = n_points their total. A histogram drawn from a
    calibrated ensemble has E[delta] = 1 for independent points; delta >> 1 is not flat. Neighbouring
    pixels are not independent, so on fields read delta as relative (lower is flatter), not as a test.

    Reference:
        Candille, G. and Talagrand, O. (2005): Evaluation of probabilistic prediction systems for a
        scalar variable. Q. J. R. Meteorol. Soc. 131, 2131-2150.
    """
    freq = np.asarray(frequencies, dtype=np.float64)
    if freq.ndim != 1 or freq.size < 2:
        raise ValueError(f"frequencies must be 1-D with at least 2 ranks, got shape {freq.shape}")
    if n_points < 1:
        raise ValueError(f"n_points must be >= 1, got {n_points}")
    n_ranks = freq.size
    counts = freq * n_points
    expected = n_points / n_ranks
    return float(np.sum((counts - expected) ** 2) / (n_points * (n_ranks - 1) / n_ranks))


def exceedance_probability(ensemble: ArrayLike, *, member_axis: int, threshold: float) -> NDArray[np.float64]:
    """Share of members strictly above `threshold` at each point (NaN where any member is NaN)."""
    members = np.moveaxis(np.asarray(ensemble, dtype=np.float64), member_axis, 0)
    probability = np.mean(members > threshold, axis=0)
    return np.where(np.isnan(members).any(axis=0), np.nan, probability)


def brier_score_fair(
    ensemble: ArrayLike, truth: ArrayLike, *, member_axis: int, threshold: float
) -> NDArray[np.float64]:
    r"""Fair Brier score of the event "value > threshold" at every point (Ferro 2014).

        BS_fair = (p - o)^2 - p (1 - p) / (m - 1)

    with p the share of the m members above the threshold and o = 1 if the truth is above it. It is the
    unbiased estimate of the Brier score of the distribution the members are drawn from, the same
    correction as `crps_ensemble_fair` (which integrates it over thresholds). For m == 1 it is (p - o)^2.
    NaN where the truth is NaN.
    """
    members, obs, m = split_members(ensemble, truth, member_axis=member_axis)
    p = exceedance_probability(members, member_axis=0, threshold=threshold)
    o = (obs > threshold).astype(np.float64)
    score = (p - o) ** 2
    if m > 1:
        score = score - p * (1.0 - p) / (m - 1)
    return np.where(np.isnan(obs), np.nan, score)


def reliability_curve(
    probability: ArrayLike, truth_event: ArrayLike, *, n_bins: int
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.int64]]:
    """Reliability diagram: mean forecast probability, observed frequency and count per probability bin.

    Bins are [i / n_bins, (i + 1) / n_bins) for i < n_bins - 1 and the last one closed at 1. Points with
    NaN probability or NaN event are left out. Empty bins get NaN means and count 0.
    """
    sum_p, sum_o, counts = reliability_sums(probability, truth_event, n_bins=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        return sum_p / counts, sum_o / counts, counts


def reliability_sums(
    probability: ArrayLike, truth_event: ArrayLike, *, n_bins: int
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.int64]]:
    """Per probability bin of `reliability_curve`: the sums of the forecast probability and of the event,
    and the count; sums of several batches (chunks of dates) add up to the whole sample's."""
    p = np.asarray(probability, dtype=np.float64).ravel()
    o = np.asarray(truth_event, dtype=np.float64).ravel()
    if p.shape != o.shape:
        raise ValueError(
            f"probability shape {np.shape(probability)} and truth_event shape {np.shape(truth_event)} differ"
        )
    keep = ~np.isnan(p) & ~np.isnan(o)
    p, o = p[keep], o[keep]
    index = np.minimum((p * n_bins).astype(np.int64), n_bins - 1)
    counts = np.bincount(index, minlength=n_bins).astype(np.int64)
    sum_p = np.bincount(index, weights=p, minlength=n_bins).astype(np.float64)
    sum_o = np.bincount(index, weights=o, minlength=n_bins).astype(np.float64)
    return sum_p, sum_o, counts
