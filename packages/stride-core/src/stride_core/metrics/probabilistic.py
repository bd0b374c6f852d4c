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
