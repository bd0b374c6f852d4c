"""Grid operations shared by the data tools: area weights and conservative coarsening."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from stride_core.errors import InputDataError


def latitude_area_weights(lat: NDArray[np.floating]) -> NDArray[np.float64]:
    """Relative cell areas on a regular lat/lon grid: proportional to cos(latitude)."""
    return np.cos(np.deg2rad(np.asarray(lat, dtype=np.float64)))


def coarsen_conservative(
    field: NDArray[np.floating],
    factor: int,
    cell_weights: NDArray[np.floating],
    *,
    min_valid_fraction: float = 0.5,
) -> NDArray[np.float32]:
    """Area-weighted block mean over factor x factor cells on the last two axes.

    A coarse cell is the weighted mean of its valid fine cells, and NaN when the valid fine cells carry less
    than `min_valid_fraction` of its area. `cell_weights` has the shape of the last two axes.
    """
    *lead, height, width = field.shape
    if height % factor or width % factor:
        raise InputDataError(
            f"grid {height}x{width} is not divisible by coarsening factor {factor}; crop the domain to a multiple"
        )
    blocks = (height // factor, factor, width // factor, factor)
    values = np.asarray(field, dtype=np.float64).reshape(*lead, *blocks)
    weights = np.broadcast_to(np.asarray(cell_weights, dtype=np.float64).reshape(blocks), values.shape)
    valid = np.isfinite(values)
    weighted_sum = np.where(valid, values * weights, 0.0).sum(axis=(-3, -1))
    valid_weight = np.where(valid, weights, 0.0).sum(axis=(-3, -1))
    total_weight = weights.sum(axis=(-3, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        coarse = weighted_sum / valid_weight
    coarse[valid_weight < min_valid_fraction * total_weight] = np.nan
    return coarse.astype(np.float32)


def coarsen_coordinate(coord: NDArray[np.floating], factor: int) -> NDArray[np.float64]:
    """Centre coordinate of each coarse cell on a regular axis: the mean of its fine-cell centres."""
    values = np.asarray(coord, dtype=np.float64)
    return values.reshape(-1, factor).mean(axis=1)
