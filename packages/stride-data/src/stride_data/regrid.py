"""LR conditioning from a separate LR source: grids checked, times aligned, values regridded onto the LR grid.

Where the LR source and the LR grid share their coordinates (both lat/lon, or x/y of one projection), the grids
are rectilinear together and regridding uses xarray-regrid (pure Python, on PyPI): conservative regridding
factorised per axis (lat/lon with a cos-latitude area correction), and bilinear or nearest interpolation.
Longitudes are wrapped to the target's side (e.g. 0..360 -> -180..180). Between coordinate systems (lat/lon
and a projection, or two projections) `stride_data.reproject` builds sparse weights with pyproj.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from numpy.typing import NDArray

from stride_core.errors import InputDataError
from stride_core.grid import coarsen_conservative, coarsen_coordinate
from stride_core.progress import get_logger
from stride_data.config import RegridMethod
from stride_data.grids import SourceGrid

# Coverage is checked with a small slack so that grids sharing an edge up to float rounding still pass.
EDGE_SLACK = 1e-3

log = get_logger("stride-data")


@dataclass(frozen=True)
class LRGrid:
    """The LR grid: the HR grid coarsened by `factor`, as axis centres and edges (lat/lon or projected x/y)."""

    kind: str
    crs: str | None
    y: NDArray[np.float64]
    x: NDArray[np.float64]
    y_edges: NDArray[np.float64]
    x_edges: NDArray[np.float64]
    lat: NDArray[np.float64]
    lon: NDArray[np.float64]


def lr_grid(hr: SourceGrid, factor: int) -> LRGrid:
    """LR cell k spans HR cells k*factor .. k*factor + factor - 1: its edges are every factor-th HR edge."""
    uniform = np.ones(hr.lat.shape)
    return LRGrid(
        kind=hr.kind,
        crs=hr.crs,
        y=coarsen_coordinate(hr.y, factor),
        x=coarsen_coordinate(hr.x, factor),
        y_edges=cell_edges(hr.y)[::factor],
        x_edges=cell_edges(hr.x)[::factor],
        lat=coarsen_conservative(hr.lat, factor, uniform).astype(np.float64),
        lon=coarsen_conservative(hr.lon, factor, uniform).astype(np.float64),
    )


def cell_edges(centres: NDArray[np.floating]) -> NDArray[np.float64]:
    """Edges of cells along a monotonic axis: midpoints between centres, half a spacing beyond both ends."""
    values = np.asarray(centres, dtype=np.float64)
    middle = (values[:-1] + values[1:]) / 2
    return np.concatenate([[2 * values[0] - middle[0]], middle, [2 * values[-1] - middle[-1]]])


def common_times(
    hr_times: pd.DatetimeIndex, lr_times: pd.DatetimeIndex, hr: Path, lr: Path
) -> pd.DatetimeIndex:
    """Times present in both sources; the others are dropped (logged), none in common is an error.

    Exact matches only: conditioning is never interpolated in time, so an LR step always is a real LR field.
    """
    common = hr_times.intersection(lr_times).sort_values()
    if common.empty:
        raise InputDataError(
            f"{lr}: no time step in common with {hr} (LR {lr_times.min()} to {lr_times.max()}, HR "
            f"{hr_times.min()} to {hr_times.max()}); use an LR source covering the HR times"
        )
    for what, times, other in (("HR", hr_times, lr.name), ("LR", lr_times, hr.name)):
        dropped = times.difference(common)
        if len(dropped):
            shown = ", ".join(str(t) for t in dropped[:3]) + (", ..." if len(dropped) > 3 else "")
            log.info("dropping %d %s time step(s) absent from %s: %s", len(dropped), what, other, shown)
    return common


def check_coverage(source: SourceGrid, target: LRGrid, method: RegridMethod, path: Path) -> None:
    """The LR source covers the LR grid (same coordinates): whole cells for conservative, centres otherwise."""
    source_x = wrapped(source.x, _centre(target)) if source.kind == "latlon" else source.x
    if method == "conservative":
        need_y, need_x = target.y_edges, target.x_edges
    else:
        need_y, need_x = target.y, target.x
    # bilinear interpolates between source centres; nearest and conservative use whole source cells.
    have_y = source.y if method == "bilinear" else cell_edges(np.sort(source.y))
    have_x = np.sort(source_x) if method == "bilinear" else cell_edges(np.sort(source_x))
    slack_y = EDGE_SLACK * float(np.abs(np.diff(source.y)).min())
    slack_x = EDGE_SLACK * float(np.abs(np.diff(source.x)).min())
    inside = (
        need_y.min() >= have_y.min() - slack_y
        and need_y.max() <= have_y.max() + slack_y
        and need_x.min() >= have_x.min() - slack_x
        and need_x.max() <= have_x.max() + slack_x
    )
    if not inside:
        names = ("lat", "lon") if source.kind == "latlon" else ("y", "x")
        raise InputDataError(
            f"{path}: the LR source spans {_span(names[0], have_y)}, {_span(names[1], have_x)} but "
            f"{method} regridding needs {_span(names[0], need_y)}, {_span(names[1], need_x)}; use an LR source "
            f"that covers the domain or crop the HR domain with region"
        )


def regrid(
    array: xr.DataArray,
    source: SourceGrid,
    target: LRGrid,
    method: RegridMethod,
    min_valid_fraction: float,
) -> NDArray[np.float32]:
    """Values [time, y_lr, x_lr] of a (time, y, x) LR source variable on the LR grid of the same coordinates."""
    # Registers the .regrid accessor; imported here as it adds about a second to every stride-data start.
    import xarray_regrid  # noqa: F401

    names = ("latitude", "longitude") if source.kind == "latlon" else ("y", "x")
    values = (
        array.reset_coords(drop=True)
        .rename({source.y_dim: names[0], source.x_dim: names[1]})
        .assign_coords({names[0]: source.y, names[1]: source.x})
        .astype(np.float64)
        .load()
    )
    if source.kind == "latlon":
        values = values.assign_coords(longitude=wrapped(source.x, _centre(target))).sortby("longitude")
    grid = xr.Dataset(coords={names[0]: target.y, names[1]: target.x})
    if method == "conservative":
        # nan_threshold is the invalid share an LR cell tolerates: valid area >= min_valid_fraction.
        result = values.regrid.conservative(
            grid,
            latitude_coord="latitude" if source.kind == "latlon" else None,
            skipna=True,
            nan_threshold=1.0 - min_valid_fraction,
        )
    elif method == "bilinear":
        result = values.regrid.linear(grid)
    else:
        result = values.regrid.nearest(grid)
    return result.transpose("time", *names).values.astype(np.float32)


def _centre(target: LRGrid) -> float:
    """The target's central longitude, towards which source longitudes are wrapped."""
    return float((np.min(target.x) + np.max(target.x)) / 2)


def wrapped(lon: NDArray[np.floating], centre: float) -> NDArray[np.float64]:
    """Longitudes shifted by multiples of 360 into [centre - 180, centre + 180); unshifted ones kept exactly."""
    values = np.asarray(lon, dtype=np.float64)
    shifted = (values - centre + 180.0) % 360.0 - 180.0 + centre
    return np.where(np.isclose(shifted, values), values, shifted)


def _span(name: str, values: NDArray[np.floating]) -> str:
    return f"{name} {float(np.min(values)):.4g}..{float(np.max(values)):.4g}"
