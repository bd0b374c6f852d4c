"""Axis and shape checks shared by the metric kernels; every message prints the shapes it compared."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray


def normalize_axis(axis: int, ndim: int, *, name: str) -> int:
    """Return `axis` as a non-negative index into an array of `ndim` dimensions."""
    if not -ndim <= axis < ndim:
        raise ValueError(f"{name}={axis} is out of range for an array with {ndim} dimensions")
    return axis % ndim


def normalize_axes(axes: int | Sequence[int], ndim: int, *, name: str) -> tuple[int, ...]:
    """Return `axes` as distinct non-negative indices, in the order given."""
    seq = (axes,) if isinstance(axes, int | np.integer) else tuple(axes)
    normalized = tuple(normalize_axis(int(a), ndim, name=name) for a in seq)
    if len(set(normalized)) != len(normalized):
        raise ValueError(f"{name}={tuple(seq)} names the same axis twice (array has {ndim} dimensions)")
    return normalized


def float_array(values: Any) -> NDArray[np.floating[Any]]:
    """`values` as a floating array: float32/float64 input is kept, anything else becomes float64."""
    array = np.asarray(values)
    if np.issubdtype(array.dtype, np.floating):
        return array
    return array.astype(np.float64)


def split_members(
    ensemble: Any, truth: Any, *, member_axis: int
) -> tuple[NDArray[np.float64], NDArray[np.float64], int]:
    """Move the member axis of `ensemble` to the front and check the rest matches `truth`.

    Returns (members [m, *truth.shape], truth, m) in float64.
    """
    ens = np.asarray(ensemble, dtype=np.float64)
    obs = np.asarray(truth, dtype=np.float64)
    if ens.ndim != obs.ndim + 1:
        raise ValueError(
            f"ensemble must have one more axis (members) than truth: ensemble shape {ens.shape}, "
            f"truth shape {obs.shape}"
        )
    axis = normalize_axis(member_axis, ens.ndim, name="member_axis")
    members = np.moveaxis(ens, axis, 0)
    if members.shape[1:] != obs.shape:
        raise ValueError(
            f"ensemble shape {ens.shape} without member_axis={member_axis} is {members.shape[1:]}, "
            f"which does not match truth shape {obs.shape}"
        )
    if members.shape[0] < 1:
        raise ValueError(f"ensemble has no members along member_axis={member_axis}: shape {ens.shape}")
    return members, obs, members.shape[0]


def masked_mean(
    values: NDArray[np.float64], valid: NDArray[np.bool_], axis: int | tuple[int, ...] | None
) -> NDArray[np.float64]:
    """Mean of `values` over `axis` counting only `valid` points; NaN where nothing is valid.

    A NaN in `values` at a valid point propagates: a broken forecast must not vanish from a score.
    """
    total = np.sum(np.where(valid, values, 0.0), axis=axis)
    count = np.sum(valid, axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(total / count, dtype=np.float64)
