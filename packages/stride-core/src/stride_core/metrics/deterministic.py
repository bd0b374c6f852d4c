"""Deterministic scores of one prediction against truth: RMSE, MAE and bias, NaN-aware."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from stride_core.metrics._checks import masked_mean, normalize_axes


def rmse(
    prediction: ArrayLike, truth: ArrayLike, *, axis: int | Sequence[int] | None = None
) -> float | NDArray[np.float64]:
    """Root mean squared error, sqrt(mean((prediction - truth)^2)) over the valid points of `axis`.

    NaN in `truth` marks an invalid point, left out of the mean; a NaN prediction at a valid point
    makes the result NaN. Returns a float when `axis` is None, else an array; NaN where no point
    is valid. `prediction` and `truth` must broadcast against each other.
    """
    error, valid, axes = _error(prediction, truth, axis)
    mse = masked_mean(error**2, valid, axes)
    return _result(np.sqrt(mse), axis)


def mae(
    prediction: ArrayLike, truth: ArrayLike, *, axis: int | Sequence[int] | None = None
) -> float | NDArray[np.float64]:
    """Mean absolute error, mean(|prediction - truth|) over the valid points of `axis`.

    NaN handling and return type as for `rmse`.
    """
    error, valid, axes = _error(prediction, truth, axis)
    return _result(masked_mean(np.abs(error), valid, axes), axis)


def bias(
    prediction: ArrayLike, truth: ArrayLike, *, axis: int | Sequence[int] | None = None
) -> float | NDArray[np.float64]:
    """Mean error, mean(prediction - truth) over the valid points of `axis`; positive = too high.

    NaN handling and return type as for `rmse`.
    """
    error, valid, axes = _error(prediction, truth, axis)
    return _result(masked_mean(error, valid, axes), axis)


def _error(
    prediction: ArrayLike, truth: ArrayLike, axis: int | Sequence[int] | None
) -> tuple[NDArray[np.float64], NDArray[np.bool_], tuple[int, ...] | None]:
    pred = np.asarray(prediction, dtype=np.float64)
    obs = np.asarray(truth, dtype=np.float64)
    try:
        shape = np.broadcast_shapes(pred.shape, obs.shape)
    except ValueError:
        raise ValueError(
            f"prediction shape {pred.shape} and truth shape {obs.shape} do not broadcast together"
        ) from None
    valid = np.broadcast_to(~np.isnan(obs), shape)
    axes = None if axis is None else normalize_axes(axis, len(shape), name="axis")
    return pred - obs, valid, axes


def _result(value: NDArray[np.float64], axis: int | Sequence[int] | None) -> float | NDArray[np.float64]:
    return float(value) if axis is None else value
