"""Probabilistic scores of an ensemble against truth: fair CRPS and the spread-skill ratio."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from stride_core.metrics._checks import masked_mean, normalize_axes, split_members


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
    members, obs, m = split_members(ensemble, truth, member_axis=member_axis)
    skill = np.mean(np.abs(members - obs), axis=0)
    if m == 1:
        return np.asarray(skill, dtype=np.float64)
    ranked = np.sort(members, axis=0)
    weights = (2.0 * np.arange(1, m + 1) - m - 1).reshape((m,) + (1,) * obs.ndim)
    spread = np.sum(weights * ranked, axis=0) / (m * (m - 1))
    return np.asarray(skill - spread, dtype=np.float64)


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
    p = np.asarray(probability, dtype=np.float64).ravel()
    o = np.asarray(truth_event, dtype=np.float64).ravel()
    if p.shape != o.shape:
        raise ValueError(
            f"probability shape {np.shape(probability)} and truth_event shape {np.shape(truth_event)} differ"
        )
    keep = ~np.isnan(p) & ~np.isnan(o)
    p, o = p[keep], o[keep]
    index = np.minimum((p * n_bins).astype(np.int64), n_bins - 1)
    counts = np.bincount(index, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_p = np.bincount(index, weights=p, minlength=n_bins) / counts
        frequency = np.bincount(index, weights=o, minlength=n_bins) / counts
    return mean_p, frequency, counts
