"""The LR context region: the LR grid extended by a margin of LR cells, for large-scale predictors.

Perfect-prognosis downscaling predicts local weather from the circulation around the domain, not only above
it: an 11x13 synoptic field at 2.5 degrees shrinks to one LR cell over a small island. With
`lr_source.context_margin` the LR source is regridded onto the LR grid extended by that many LR cells on every
side (same cell size, same method); the dataset stores it as `cond_context` and its interior, cell for cell the
regridding onto the LR grid itself, as `cond_dynamic`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyproj
from numpy.typing import NDArray

from stride_core.errors import InputDataError
from stride_data.regrid import LRGrid

ContextCoords = dict[str, tuple[tuple[str, ...], NDArray[np.float64]]]


def extended(grid: LRGrid, margin: int, path: Path) -> LRGrid:
    """`grid` with `margin` more cells on every side, each as wide as the edge cell next to it."""
    if margin == 0:
        return grid
    y_edges, x_edges = _grow(grid.y_edges, margin), _grow(grid.x_edges, margin)
    y, x = (y_edges[:-1] + y_edges[1:]) / 2, (x_edges[:-1] + x_edges[1:]) / 2
    if grid.kind == "latlon":
        if np.abs(y_edges).max() > 90.0 + 1e-6:
            raise InputDataError(
                f"{path}: lr_source.context_margin {margin} extends the LR grid past a pole (latitude edges "
                f"{y_edges.min():.4g}..{y_edges.max():.4g}); use a smaller margin"
            )
        lat, lon = np.meshgrid(y, x, indexing="ij")
    else:
        to_geographic = pyproj.Transformer.from_crs(
            pyproj.CRS.from_user_input(grid.crs), 4326, always_xy=True
        )
        xx, yy = np.meshgrid(x, y)
        lon, lat = to_geographic.transform(xx, yy)
    return LRGrid(grid.kind, grid.crs, y, x, y_edges, x_edges, np.asarray(lat), np.asarray(lon))


def _grow(edges: NDArray[np.float64], margin: int) -> NDArray[np.float64]:
    low = edges[0] - (edges[1] - edges[0]) * np.arange(margin, 0, -1)
    high = edges[-1] + (edges[-1] - edges[-2]) * np.arange(1, margin + 1)
    return np.concatenate([low, edges, high])


def interior(values: NDArray[np.float32], margin: int) -> NDArray[np.float32]:
    """[..., y_ctx, x_ctx] -> the LR grid's own cells [..., y_lr, x_lr]."""
    if margin == 0:
        return values
    return np.ascontiguousarray(values[..., margin:-margin, margin:-margin])


def context_coordinates(grid: LRGrid) -> ContextCoords:
    """Coordinates of the stored context: lat_ctx/lon_ctx (1-D on lat/lon grids), plus y_ctx/x_ctx if projected."""
    if grid.kind == "latlon":
        return {"lat_ctx": (("y_ctx",), grid.y), "lon_ctx": (("x_ctx",), grid.x)}
    return {
        "y_ctx": (("y_ctx",), grid.y),
        "x_ctx": (("x_ctx",), grid.x),
        "lat_ctx": (("y_ctx", "x_ctx"), grid.lat),
        "lon_ctx": (("y_ctx", "x_ctx"), grid.lon),
    }
