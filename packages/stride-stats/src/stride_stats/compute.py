"""Per-variable statistics computed chunk by chunk with Dask, so memory stays bounded on large stores."""

from __future__ import annotations

from typing import Any

import dask
import dask.array as da
import numpy as np

from stride_contracts.stats import QUANTILE_LEVELS

QUANTILE_COLUMNS = tuple(f"q{round(level * 100):02d}" for level in QUANTILE_LEVELS)


def variable_stats(values: da.Array, *, log_eps: float, bins: int) -> dict[str, Any]:
    """Count, valid fraction, moments, extremes, histogram quantiles and log-space moments of one variable.

    Two passes over the data: moments and extremes first, then a fixed-range histogram from which the
    quantiles are read by linear interpolation (exact to one bin width, (max - min) / bins).
    """
    values = values.astype(np.float64)
    valid = da.isfinite(values)
    zeroed = da.where(valid, values, 0.0)
    count, total, total_sq, low, high = dask.compute(
        valid.sum(), zeroed.sum(), (zeroed**2).sum(), da.nanmin(values), da.nanmax(values)
    )
    size = values.size
    if count == 0:
        raise ValueError("no valid values")
    mean = total / count
    # Subtracting the mean before squaring again would need a third pass; this is exact enough in float64.
    variance = max(total_sq / count - mean**2, 0.0)
    row: dict[str, Any] = {
        "count": int(count),
        "valid_fraction": float(count / size),
        "mean": float(mean),
        "std": float(np.sqrt(variance)),
        "min": float(low),
        "max": float(high),
    }
    span = (float(low), float(high) if high > low else float(low) + 1.0)
    counts, edges = da.histogram(values, bins=bins, range=span)
    row.update(
        zip(QUANTILE_COLUMNS, _histogram_quantiles(counts.compute(), edges, QUANTILE_LEVELS), strict=True)
    )
    if low >= 0:
        logged = da.log(zeroed + log_eps)
        log_sum, log_sq = dask.compute(da.where(valid, logged, 0).sum(), da.where(valid, logged**2, 0).sum())
        log_mean = log_sum / count
        row.update(
            log_mean=float(log_mean),
            log_std=float(np.sqrt(max(log_sq / count - log_mean**2, 0.0))),
            log_eps=log_eps,
        )
    else:
        row.update(log_mean=None, log_std=None, log_eps=None)
    return row


def _histogram_quantiles(counts: np.ndarray, edges: np.ndarray, levels: tuple[float, ...]) -> list[float]:
    cumulative = np.concatenate([[0.0], np.cumsum(counts, dtype=np.float64)])
    cumulative /= cumulative[-1]
    return [float(np.interp(level, cumulative, edges)) for level in levels]
