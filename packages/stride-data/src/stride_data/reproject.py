"""Regridding between coordinate systems (lat/lon and a projection, or two projections) with pyproj.

Each LR cell is represented by points in its own coordinates: its centre, or for conservative regridding a
`subcells` x `subcells` lattice of sub-cell centres. pyproj carries the points into the source's coordinates,
where each takes the source cell it falls in (the source grid is rectilinear there). Conservative regridding is
the weighted mean over a cell's points, with the sub-cells' areas as weights (cos(latitude) on a lat/lon LR grid,
uniform on a projected one, as in the coarsening). That is the overlap-area mean with each overlap measured to
the nearest sub-cell: exact where the source cell edges fall on sub-cell edges, and within about 1/subcells of
a cell's area otherwise. Where the source is finer than the LR cells, the lattice is refined to about two
points per source cell and axis (up to MAX_SUBCELLS), so every source cell inside an LR cell is counted. Nearest takes the source cell under the centre; bilinear interpolates between the
source centres around it.

The weights form one sparse matrix [LR cells x source cells], built once per source and applied to every time
step and variable, as ESMF-style remappers do. NaN source values are skipped: an LR cell is valid when the
valid share of its weight is at least `min_valid_fraction`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyproj
import scipy.sparse
import xarray as xr
from numpy.typing import NDArray

from stride_core.errors import InputDataError
from stride_data.config import RegridMethod
from stride_data.grids import SourceGrid
from stride_data.regrid import LRGrid, cell_edges, wrapped

GEOGRAPHIC = pyproj.CRS.from_epsg(4326)
MAX_SUBCELLS = 64
"""Bounds the lattice (and memory: LR cells x subcells^2 points) where the source is much finer."""
TIME_BLOCK = 256
"""Time steps regridded at once: memory stays bounded on long records."""


def crs_of(kind: str, crs: str | None, path: Path) -> pyproj.CRS:
    """The grid's coordinate system: WGS84 lat/lon, or its projection parsed by PROJ."""
    if kind == "latlon":
        return GEOGRAPHIC
    try:
        return pyproj.CRS.from_user_input(crs)
    except pyproj.exceptions.CRSError as exc:
        raise InputDataError(
            f"{path}: projection '{str(crs)[:80]}' is not understood by PROJ ({exc}); give the grid mapping "
            f"as CF crs_wkt or a proj4 string"
        ) from None


def same_coordinates(source: SourceGrid, target: LRGrid, path: Path) -> bool:
    """Both grids are lat/lon, or both are x/y of one projection (then they are rectilinear together)."""
    if source.kind != target.kind:
        return False
    if source.kind == "latlon":
        return True
    return crs_of(source.kind, source.crs, path).equals(crs_of(target.kind, target.crs, path))


@dataclass(frozen=True)
class CrossGridRemap:
    """Sparse weights from a source grid onto the LR grid of another coordinate system."""

    weights: scipy.sparse.csr_matrix
    """[LR cells, window cells]: summed weight of each cell's points falling in each source cell."""
    total: NDArray[np.float64]
    """[LR cells]: the weight of all of a cell's points."""
    lr_shape: tuple[int, int]
    rows: slice
    """The window of source rows and columns the LR grid touches (plus one cell): only it is read."""
    cols: slice
    method: RegridMethod
    source_y: NDArray[np.float64]
    """Bilinear only: each LR centre in the source's coordinates ([LR cells])."""
    source_x: NDArray[np.float64]
    min_valid_fraction: float

    @classmethod
    def build(
        cls,
        source: SourceGrid,
        target: LRGrid,
        method: RegridMethod,
        subcells: int,
        min_valid_fraction: float,
        path: Path,
    ) -> CrossGridRemap:
        transformer = pyproj.Transformer.from_crs(
            crs_of(target.kind, target.crs, path), crs_of(source.kind, source.crs, path), always_xy=True
        )

        def in_source(lattice: int) -> tuple[NDArray[np.float64], ...]:
            y, x, weight = lattice_points(target, lattice)
            sx, sy = transformer.transform(x, y)
            sx, sy = np.asarray(sx, dtype=np.float64), np.asarray(sy, dtype=np.float64)
            if source.kind == "latlon":
                sx = wrapped(sx, float((source.x.min() + source.x.max()) / 2))
            return sy, sx, weight

        lattice = 1
        if method == "conservative":
            # Quarter points span half an LR cell: twice their extent in source cells is the cell's size.
            sy, sx, _ = in_source(2)
            cells_y = 2 * np.ptp(sy, axis=1).max() / np.abs(np.diff(source.y)).min()
            cells_x = 2 * np.ptp(sx, axis=1).max() / np.abs(np.diff(source.x)).min()
            # Rounded first: a cell exactly k source cells wide must give 2k, not 2k + 1 from float noise.
            lattice = max(subcells, min(MAX_SUBCELLS, int(np.ceil(np.round(2 * max(cells_y, cells_x), 6)))))
        sy, sx, weight = in_source(lattice)
        rows, cols = _containing_cell(sy, source.y), _containing_cell(sx, source.x)
        inside = (rows >= 0) & (cols >= 0)
        if method == "bilinear":
            inside &= _within(sy, source.y) & _within(sx, source.x)
        if not inside.all():
            names = ("lat", "lon") if source.kind == "latlon" else ("y", "x")
            raise InputDataError(
                f"{path}: {int((~inside).any(axis=1).sum())} of {inside.shape[0]} LR cells reach outside the LR "
                f"source ({names[0]} {source.y.min():.6g}..{source.y.max():.6g}, {names[1]} "
                f"{source.x.min():.6g}..{source.x.max():.6g}) in its coordinate system; use an LR source that "
                f"covers the domain or crop the HR domain with region"
            )
        window_rows = slice(max(int(rows.min()) - 1, 0), min(int(rows.max()) + 2, len(source.y)))
        window_cols = slice(max(int(cols.min()) - 1, 0), min(int(cols.max()) + 2, len(source.x)))
        width = window_cols.stop - window_cols.start
        height = window_rows.stop - window_rows.start
        cells = sy.shape[0]
        flat = (rows - window_rows.start) * width + (cols - window_cols.start)
        matrix = scipy.sparse.csr_matrix(
            (weight.ravel(), (np.repeat(np.arange(cells), weight.shape[1]), flat.ravel())),
            shape=(cells, height * width),
        )
        return cls(
            weights=matrix,
            total=weight.sum(axis=1),
            lr_shape=(len(target.y), len(target.x)),
            rows=window_rows,
            cols=window_cols,
            method=method,
            source_y=sy[:, 0],
            source_x=sx[:, 0],
            min_valid_fraction=min_valid_fraction,
        )

    def apply(self, array: xr.DataArray, source: SourceGrid) -> NDArray[np.float32]:
        """Values [time, y_lr, x_lr] of a (time, y, x) source variable; NaN where not valid.

        Only the source window the LR grid touches is read, TIME_BLOCK steps at a time.
        """
        window = array.isel({source.y_dim: self.rows, source.x_dim: self.cols})
        blocks = []
        for start in range(0, window.shape[0], TIME_BLOCK):
            block = window.isel(time=slice(start, start + TIME_BLOCK))
            if self.method == "bilinear":
                blocks.append(self._interpolate(block, source))
            else:
                blocks.append(self._weighted_mean(np.asarray(block.values, dtype=np.float64)))
        return np.concatenate(blocks).reshape(window.shape[0], *self.lr_shape).astype(np.float32)

    def _weighted_mean(self, values: NDArray[np.float64]) -> NDArray[np.float64]:
        """[time, LR cells] from [time, window rows, window cols], skipping NaN source cells."""
        flat = values.reshape(values.shape[0], -1).T
        finite = np.isfinite(flat)
        summed = self.weights @ np.where(finite, flat, 0.0)
        valid_weight = self.weights @ finite.astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            result = summed / valid_weight
        enough = valid_weight >= self.min_valid_fraction * self.total[:, None] * (1 - 1e-9)
        return np.asarray(np.where(enough & (valid_weight > 0), result, np.nan)).T

    def _interpolate(self, block: xr.DataArray, source: SourceGrid) -> NDArray[np.float64]:
        values = (
            block.reset_coords(drop=True)
            .rename({source.y_dim: "sy", source.x_dim: "sx"})
            .assign_coords(sy=source.y[self.rows], sx=source.x[self.cols])
            .sortby(["sy", "sx"])
            .astype(np.float64)
        )
        at = {"sy": xr.DataArray(self.source_y, dims="cell"), "sx": xr.DataArray(self.source_x, dims="cell")}
        return np.asarray(values.interp(at, method="linear").transpose("time", "cell").values)


def lattice_points(
    target: LRGrid, subcells: int
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Sub-cell centres of every LR cell in its own coordinates, [cells, subcells^2] each, and their weights.

    With subcells = 1 the points are the cell centres.
    """
    fractions = (np.arange(subcells) + 0.5) / subcells
    if subcells == 1:
        ys, xs = target.y[:, None], target.x[:, None]
    else:
        ys = target.y_edges[:-1, None] + np.diff(target.y_edges)[:, None] * fractions
        xs = target.x_edges[:-1, None] + np.diff(target.x_edges)[:, None] * fractions
    shape = (len(target.y), len(target.x), subcells, subcells)
    y = np.broadcast_to(ys[:, None, :, None], shape).reshape(-1, subcells * subcells)
    x = np.broadcast_to(xs[None, :, None, :], shape).reshape(-1, subcells * subcells)
    # Sub-cells of a lat/lon cell shrink with cos(latitude); projected sub-cells are equal in projected area.
    weight = np.cos(np.radians(y)) if target.kind == "latlon" else np.ones_like(y)
    return y, x, weight


def _containing_cell(points: NDArray[np.float64], axis: NDArray[np.float64]) -> NDArray[np.intp]:
    """Index along `axis` (monotonic, either direction) of the cell holding each point; -1 outside the grid."""
    order = np.argsort(axis)
    edges = cell_edges(axis[order])
    position = np.searchsorted(edges, points, side="right") - 1
    inside = (position >= 0) & (position < len(axis))
    return np.where(inside, order[np.clip(position, 0, len(axis) - 1)], -1)


def _within(points: NDArray[np.float64], axis: NDArray[np.float64]) -> NDArray[np.bool_]:
    """Inside the span of the source centres, where bilinear interpolation is defined."""
    return (points >= axis.min()) & (points <= axis.max())
