"""Probability-matched ensemble mean (Ebert 2001)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from stride_core.metrics._checks import float_array, normalize_axes, normalize_axis


def probability_matched_mean(
    ensemble: ArrayLike,
    *,
    member_axis: int = 0,
    spatial_axes: Sequence[int] = (-2, -1),
    valid: ArrayLike | None = None,
) -> NDArray[np.floating[Any]]:
    """Probability-matched mean: the ensemble mean's pattern with the ensemble's values.

    The ensemble mean places features well but smooths their amplitude away. PMM (Ebert 2001)
    keeps the mean's spatial ranking and restores the amplitude distribution: for each
    field (every index of the axes that are neither members nor spatial, e.g. time and variable)

    1. pool the m members' values at the n valid pixels and sort the m*n values;
    2. reduce them to n values by averaging each consecutive block of m (the k-th value is the
       mean of pooled ranks k*m .. k*m + m - 1, i.e. the pooled quantile near (k + 1/2) / n);
    3. give the pixel whose ensemble mean has rank k the k-th value.

    The output therefore has the ensemble mean's ranks and the pooled distribution's quantiles
    (its mean equals the pooled mean exactly). Ties in the ensemble mean keep pixel order. A pixel
    is invalid where the ensemble mean is NaN (any member NaN): it stays NaN and none of its
    values enter the pool. `valid` (True = supervised pixel, e.g. where the truth is finite or the
    dataset's validity mask is set) marks more pixels invalid the same way, so values from pixels that
    were never supervised (radar outside coverage, sea in a land-only dataset) never enter the pool.
    For m == 1 the result is the member itself.

    Reference:
        Ebert, E. E. (2001): Ability of a poor man's ensemble to predict the probability and
        distribution of precipitation. Mon. Wea. Rev. 129, 2461-2480.

    Args:
        ensemble: members along `member_axis`, spatial dimensions along `spatial_axes`.
        member_axis: the axis of `ensemble` that holds the members.
        spatial_axes: the axes *of ensemble* that span one field (any number, usually two).
        valid: booleans broadcastable to the output's shape (the ensemble's without the member
            axis); None keeps every pixel where the members are finite.

    Returns:
        `ensemble`'s shape without the member axis; floating input keeps its dtype.
    """
    ens = float_array(ensemble)
    member = normalize_axis(member_axis, ens.ndim, name="member_axis")
    if valid is not None:
        mask = np.asarray(valid, dtype=bool)
        out_shape = ens.shape[:member] + ens.shape[member + 1 :]
        try:
            mask = np.broadcast_to(mask, out_shape)
        except ValueError:
            raise ValueError(
                f"valid shape {mask.shape} does not broadcast to the ensemble without its member axis "
                f"{out_shape} (ensemble shape {ens.shape}, member_axis={member_axis})"
            ) from None
        ens = np.where(np.expand_dims(mask, member), ens, np.nan).astype(ens.dtype, copy=False)
    spatial = normalize_axes(spatial_axes, ens.ndim, name="spatial_axes")
    if member in spatial or not spatial:
        raise ValueError(
            f"spatial_axes={tuple(spatial_axes)} must be non-empty and must not contain "
            f"member_axis={member_axis} (ensemble shape {ens.shape})"
        )
    ns = len(spatial)
    moved = np.moveaxis(ens, (member, *spatial), tuple(range(-ns - 1, 0)))
    batch_shape, m, field_shape = moved.shape[: -ns - 1], moved.shape[-ns - 1], moved.shape[-ns:]
    if m < 1:
        raise ValueError(f"ensemble has no members along member_axis={member_axis}: shape {ens.shape}")
    members = moved.reshape(math.prod(batch_shape), m, math.prod(field_shape))
    mean = members.mean(axis=1)
    out = np.full_like(mean, np.nan)

    complete = ~np.isnan(mean).any(axis=1)
    if complete.any():
        out[complete] = _match_rows(members[complete], mean[complete])
    for row in np.flatnonzero(~complete):
        kept = ~np.isnan(mean[row])
        if kept.any():
            out[row, kept] = _match_rows(members[row][None, :, kept], mean[row][None, kept])[0]

    out = out.reshape(batch_shape + field_shape)
    # Output axes are the ensemble's without the member axis; put the spatial ones back in place.
    destinations = tuple(axis - (axis > member) for axis in spatial)
    return np.moveaxis(out, tuple(range(-ns, 0)), destinations)


def _match_rows(members: NDArray[Any], mean: NDArray[Any]) -> NDArray[Any]:
    """PMM for fields without NaN: members [B, m, n], mean [B, n] -> [B, n]."""
    batch, m, n = members.shape
    pooled = np.sort(members.reshape(batch, m * n), axis=1)
    quantiles = pooled.reshape(batch, n, m).mean(axis=2)
    order = np.argsort(mean, axis=1, kind="stable")
    matched = np.empty_like(mean)
    np.put_along_axis(matched, order, quantiles, axis=1)
    return matched
