"""Spatial verification: the fractions skill score, area-weighted means and pointwise correlation."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray


def window_sums(field: NDArray[np.float64], size: int) -> NDArray[np.float64]:
    """Sums over every size x size window lying wholly inside the last two axes (summed-area table)."""
    ny, nx = field.shape[-2:]
    if not 1 <= size <= min(ny, nx):
        raise ValueError(f"window size {size} must be in 1..{min(ny, nx)} for fields of shape {(ny, nx)}")
    table = np.zeros((*field.shape[:-2], ny + 1, nx + 1))
    table[..., 1:, 1:] = field.cumsum(axis=-2).cumsum(axis=-1)
    return (
        table[..., size:, size:]
        - table[..., :-size, size:]
        - table[..., size:, :-size]
        + table[..., :-size, :-size]
    )


def fss_terms(forecast: ArrayLike, truth: ArrayLike, *, threshold: float, size: int) -> tuple[float, float]:
    """The two sums of the fractions skill score over every field of `forecast` (same shape as `truth`).

    Returns (sum (P_f - P_o)^2, sum P_f^2 + P_o^2) over all windows of all fields, so scores of several
    batches (dates, members) add up before the ratio: FSS = 1 - first / second (Roberts and Lean 2008,
    aggregated over fields as they and `scores.spatial.fss_2d` do). The event is value > threshold.
    P is the share of event pixels in each size x size window lying inside the domain (no padding, the
    `zero_padding=False` of `scores`). NaN pixels of the truth are no event in either field: mask the
    forecast where the truth is invalid before calling, so both fields see the same pixels.
    """
    f = np.asarray(forecast)
    o = np.asarray(truth)
    if f.shape != o.shape:
        raise ValueError(f"forecast shape {f.shape} and truth shape {o.shape} differ")
    return fss_sums(f, o, thresholds=(threshold,), sizes=(size,))[(float(threshold), int(size))]


def fss_sums(
    forecast: ArrayLike,
    truth: ArrayLike,
    *,
    thresholds: Sequence[float],
    sizes: Sequence[int],
    member_axis: int | None = None,
) -> dict[tuple[float, int], tuple[float, float]]:
    """`fss_terms` at every (threshold, size) at once, for an ensemble scored against one truth.

    `forecast` has the shape of `truth`, or (with `member_axis`) one more axis of members, each member
    scored against the same truth (the sums add over members, as `fss_terms` on the truth broadcast to
    the members' shape gives). Per threshold the event indicators' summed-area tables are built once
    (the truth's once, not per member) and every window size is read from them; window counts are
    integers, so the sums are exact (see `_squared_sum`) and equal `fss_terms`' up to float rounding. This is what
    makes the spatial family's FSS grid (models x thresholds x sizes) cheap: the cumulative sums were
    most of its time.
    """
    f = np.asarray(forecast)
    o = np.asarray(truth)
    if member_axis is not None:
        f = np.moveaxis(f, member_axis, 0)
    if f.shape[f.ndim - o.ndim :] != o.shape:
        raise ValueError(f"forecast shape {np.shape(forecast)} does not match truth shape {o.shape}")
    ny, nx = o.shape[-2:]
    for size in sizes:
        if not 1 <= size <= min(ny, nx):
            raise ValueError(f"window size {size} must be in 1..{min(ny, nx)} for fields of shape {(ny, nx)}")
    sums: dict[tuple[float, int], tuple[float, float]] = {}
    for threshold in thresholds:
        table_f = _count_table(f > threshold)
        table_o = _count_table(o > threshold)
        copies = f.size // max(o.size, 1)  # how many forecast fields each truth field is scored against
        for size in sizes:
            s_f = _windows(table_f, size)
            s_o = _windows(table_o, size)
            area2 = float(size**4)
            numerator = _squared_sum(s_f - s_o)
            denominator = _squared_sum(s_f) + copies * _squared_sum(s_o)
            sums[(float(threshold), int(size))] = (numerator / area2, denominator / area2)
    return sums


def _count_table(events: NDArray[np.bool_]) -> NDArray[np.int32]:
    """The summed-area table of event indicators, zero-padded on top and left (int32: exact counts)."""
    ny, nx = events.shape[-2:]
    table = np.zeros((*events.shape[:-2], ny + 1, nx + 1), np.int32)
    np.cumsum(events, axis=-2, dtype=np.int32, out=table[..., 1:, 1:])
    np.cumsum(table[..., 1:, 1:], axis=-1, out=table[..., 1:, 1:])
    return table


def _squared_sum(counts: NDArray[np.int32]) -> float:
    """The sum of squared window counts: a float64 dot product, exact while the sum stays below 2**53
    (365 dates x 16 members x 256^2 windows x 25^4 is 1.5e14)."""
    flat = counts.astype(np.float64).ravel()
    return float(np.dot(flat, flat))


def _windows(table: NDArray[np.int32], size: int) -> NDArray[np.int32]:
    return (
        table[..., size:, size:]
        - table[..., :-size, size:]
        - table[..., size:, :-size]
        + table[..., :-size, :-size]
    )


def fractions_skill_score(forecast: ArrayLike, truth: ArrayLike, *, threshold: float, size: int) -> float:
    r"""Fractions skill score (Roberts and Lean 2008) of the event value > threshold at one window size.

        FSS = 1 - sum (P_f - P_o)^2 / sum (P_f^2 + P_o^2)

    over all windows of all fields (see `fss_terms`). 1 is perfect, 0 no skill; NaN when neither field
    has an event anywhere (the score is undefined).

    Reference:
        Roberts, N. M. and Lean, H. W. (2008): Scale-selective verification of rainfall accumulations
        from high-resolution forecasts of convective events. Mon. Wea. Rev. 136, 78-97.
    """
    numerator, denominator = fss_terms(forecast, truth, threshold=threshold, size=size)
    return float("nan") if denominator == 0 else 1.0 - numerator / denominator


def weighted_mean(values: ArrayLike, weights: ArrayLike) -> float:
    """Mean of `values` weighted by `weights` (broadcast) over the points where `values` is finite."""
    v = np.asarray(values, dtype=np.float64)
    w = np.broadcast_to(np.asarray(weights, dtype=np.float64), v.shape)
    keep = np.isfinite(v)
    total = float(np.sum(w[keep]))
    return float("nan") if total == 0 else float(np.sum(v[keep] * w[keep]) / total)


def pointwise_correlation(prediction: ArrayLike, truth: ArrayLike, *, axis: int = 0) -> NDArray[np.float64]:
    """Pearson correlation over `axis` (time) at every pixel; NaN where either series is constant or invalid.

    Only the steps where both are finite count.
    """
    x = np.moveaxis(np.asarray(prediction, dtype=np.float64), axis, 0)
    y = np.moveaxis(np.asarray(truth, dtype=np.float64), axis, 0)
    if x.shape != y.shape:
        raise ValueError(f"prediction shape {np.shape(prediction)} and truth shape {np.shape(truth)} differ")
    keep = np.isfinite(x) & np.isfinite(y)
    n = keep.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mx = np.where(keep, x, 0.0).sum(axis=0) / n
        my = np.where(keep, y, 0.0).sum(axis=0) / n
        dx = np.where(keep, x - mx, 0.0)
        dy = np.where(keep, y - my, 0.0)
        r = (dx * dy).sum(axis=0) / np.sqrt((dx**2).sum(axis=0) * (dy**2).sum(axis=0))
    return np.asarray(np.where(n >= 2, r, np.nan), dtype=np.float64)


def semivariogram(fields: ArrayLike, lags: tuple[int, ...] | list[int]) -> NDArray[np.float64]:
    r"""Empirical semivariogram of 2-D fields at pixel lags along the rows and the columns.

        gamma(h) = 1 / (2 N(h)) sum (z(s + h) - z(s))^2

    over every pair of valid pixels h apart in x or in y (Matheron's estimator; Cressie 1993, eq. 2.4.2),
    pooled over the leading axes (dates, members) and both directions, so it is the average of the two
    axis-aligned directional variograms, weighted by their pair counts. A pair with a NaN is left out.

    Reference:
        Cressie, N. (1993): Statistics for Spatial Data, revised edition. Wiley, New York.

    Args:
        fields: [..., H, W]; NaN marks invalid pixels.
        lags: positive pixel distances, each smaller than H and W.

    Returns:
        gamma at each lag, shape (len(lags),); NaN at a lag without a valid pair.
    """
    total, count = semivariogram_sums(fields, lags)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / (2 * np.maximum(count, 1)), np.nan)


def semivariogram_sums(
    fields: ArrayLike, lags: tuple[int, ...] | list[int]
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """The sums behind `semivariogram`: per lag, sum (z(s + h) - z(s))^2 and the number of valid pairs.

    They add up over batches of fields (chunks of dates), so gamma = total / (2 count) of the sums of all
    batches equals `semivariogram` of all fields at once.
    """
    z = np.asarray(fields)
    ny, nx = z.shape[-2:]
    stack = z.reshape(-1, ny, nx)
    step = max(1, VARIOGRAM_BLOCK // (ny * nx))  # fields per block: float64 differences stay small
    totals = np.zeros(len(lags))
    counts = np.zeros(len(lags), dtype=np.int64)
    for k, h in enumerate(lags):
        if not 1 <= h < min(ny, nx):
            raise ValueError(f"lag {h} must be in 1..{min(ny, nx) - 1} for fields of shape {(ny, nx)}")
        for start in range(0, stack.shape[0], step):
            block = stack[start : start + step]
            for a, b in ((block[:, h:, :], block[:, :-h, :]), (block[:, :, h:], block[:, :, :-h])):
                difference = a.astype(np.float64) - b
                valid = np.isfinite(difference)
                totals[k] += float(np.sum(np.square(difference, where=valid, out=np.zeros_like(difference))))
                counts[k] += int(valid.sum())
    return totals, counts


VARIOGRAM_BLOCK = 1 << 22
"""Values per block of `semivariogram` (32 MiB of float64 differences)."""
