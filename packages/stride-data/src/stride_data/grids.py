"""Recognise a source's horizontal grid: regular lat/lon axes, or projected x/y with 2-D lat/lon and a CRS."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr
from numpy.typing import NDArray

from stride_core.errors import InputDataError
from stride_core.grid import latitude_area_weights

LAT_DIMS = ("latitude", "lat")
LON_DIMS = ("longitude", "lon")


@dataclass(frozen=True)
class SourceGrid:
    """The HR grid of a source, with 2-D cell-centre lat/lon whatever its kind."""

    kind: str
    y_dim: str
    x_dim: str
    y: NDArray[np.float64]
    x: NDArray[np.float64]
    lat: NDArray[np.float64]
    lon: NDArray[np.float64]
    crs: str | None

    def cell_weights(self) -> NDArray[np.float64]:
        """Relative cell areas for conservative coarsening.

        Lat/lon cells shrink with cos(latitude). Projected cells are equal in projected area; the true-area
        variation of a conformal projection across one coarse block (8 km) is far below 0.1%, so uniform.
        """
        if self.kind == "latlon":
            return np.broadcast_to(latitude_area_weights(self.y)[:, None], self.lat.shape).copy()
        return np.ones(self.lat.shape)

    def crop(self, rows: slice, cols: slice) -> SourceGrid:
        return SourceGrid(
            kind=self.kind,
            y_dim=self.y_dim,
            x_dim=self.x_dim,
            y=self.y[rows],
            x=self.x[cols],
            lat=self.lat[rows, cols],
            lon=self.lon[rows, cols],
            crs=self.crs,
        )


def detect_grid(source: xr.Dataset, path: Path) -> SourceGrid:
    lat_dim = next((d for d in LAT_DIMS if d in source.dims), None)
    lon_dim = next((d for d in LON_DIMS if d in source.dims), None)
    if lat_dim and lon_dim:
        lat = source[lat_dim].values.astype(np.float64)
        lon = source[lon_dim].values.astype(np.float64)
        lat2d, lon2d = np.meshgrid(lat, lon, indexing="ij")
        return SourceGrid("latlon", lat_dim, lon_dim, lat, lon, lat2d, lon2d, None)
    if "y" in source.dims and "x" in source.dims:
        for name in ("lat", "lon"):
            if name not in source.variables or source[name].dims != ("y", "x"):
                raise InputDataError(
                    f"{path}: projected grid (dims y, x) without 2-D '{name}(y, x)' cell-centre coordinates; "
                    f"add them (e.g. computed with pyproj) so regions and plots can be placed"
                )
        return SourceGrid(
            "projected",
            "y",
            "x",
            source["y"].values.astype(np.float64),
            source["x"].values.astype(np.float64),
            source["lat"].values.astype(np.float64),
            source["lon"].values.astype(np.float64),
            _crs_of(source, path),
        )
    raise InputDataError(
        f"{path}: no latitude/longitude or projected y/x dimensions (dims: {list(source.dims)}); "
        f"STRIDE reads regular lat/lon grids and projected grids with a CF grid mapping"
    )


def _crs_of(source: xr.Dataset, path: Path) -> str:
    """The projection from a CF grid-mapping variable (crs_wkt / spatial_ref) or a proj4 attribute."""
    for variable in source.variables.values():
        if "grid_mapping_name" in variable.attrs:
            for key in ("crs_wkt", "spatial_ref", "proj4_params"):
                if variable.attrs.get(key):
                    return str(variable.attrs[key])
    for key in ("projection_proj4", "proj4"):
        if source.attrs.get(key):
            return str(source.attrs[key])
    raise InputDataError(
        f"{path}: projected grid without a CF grid-mapping variable (crs_wkt/spatial_ref) or a proj4 attribute; "
        f"add the projection so the dataset stays georeferenced"
    )
