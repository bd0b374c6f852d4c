"""Regridding an LR source from another coordinate system onto the LR grid (stride_data.reproject)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyproj
import pytest
import xarray as xr

from stride_core.errors import InputDataError
from stride_data.cli import main
from stride_data.grids import SourceGrid, detect_grid
from stride_data.regrid import lr_grid
from stride_data.reproject import CrossGridRemap, same_coordinates

REPO = Path(__file__).resolve().parents[3]
DATA = Path(os.environ.get("STRIDE_DATA") or REPO.parent / "shared" / "data")
KNMI = DATA / "radar_knmi_2010-08-26.nc"
needs_knmi = pytest.mark.skipif(
    not KNMI.is_file(),
    reason=f"real KNMI radar file missing: {KNMI}; set STRIDE_DATA to the folder holding it",
)

LAEA = "+proj=laea +lat_0=52 +lon_0=10 +x_0=0 +y_0=0 +ellps=GRS80 +units=m +no_defs"
# The same projection with its origin moved 3 km east: same places, x larger by 3000 m.
LAEA_EAST = LAEA.replace("+x_0=0", "+x_0=3000")


def projected_grid(y: np.ndarray, x: np.ndarray, crs: str) -> SourceGrid:
    lon, lat = pyproj.Transformer.from_crs(crs, "EPSG:4326", always_xy=True).transform(*np.meshgrid(x, y))
    return SourceGrid("projected", "y", "x", y, x, np.asarray(lat), np.asarray(lon), crs)


def as_array(values: np.ndarray, grid: SourceGrid) -> xr.DataArray:
    return xr.DataArray(values, dims=("time", grid.y_dim, grid.x_dim))


def test_same_projection_written_differently_is_the_same_coordinate_system() -> None:
    y, x = np.arange(4) * 1000.0, np.arange(4) * 1000.0
    wkt = pyproj.CRS.from_user_input(LAEA).to_wkt()
    target = lr_grid(projected_grid(y, x, LAEA), 2)
    assert same_coordinates(projected_grid(y, x, wkt), target, Path("lr.nc"))
    assert not same_coordinates(projected_grid(y, x, LAEA_EAST), target, Path("lr.nc"))


def test_conservative_between_projections_is_exact_where_cells_align() -> None:
    """Source 1 km cells in LAEA; HR 1 km cells in LAEA shifted 3 km: an LR cell (x4) is 16 source cells."""
    rng = np.random.default_rng(0)
    source_x = 500.0 + 1000.0 * np.arange(20)  # source cell j spans j..j+1 km
    source_y = 30_500.0 - 1000.0 * np.arange(14)  # descending, like most files
    source = projected_grid(source_y, source_x, LAEA)
    values = 280 + rng.standard_normal((2, 14, 20))
    values[0, 2, 1] = np.nan  # 1 of the 16 cells of LR cell (0, 0): kept with 0.5
    values[0, 2:6, 4:8] = np.nan  # all of LR cell (0, 1): void
    # HR x 3500 + 1000 k (shifted CRS) is source x 500 + 1000 k: HR column k = source column k; rows from 2.
    hr = projected_grid(source_y[2:10], 3500.0 + 1000.0 * np.arange(16), LAEA_EAST)
    target = lr_grid(hr, 4)
    assert not same_coordinates(source, target, Path("lr.nc"))
    blocks = values[:, 2:10, 0:16].reshape(2, 2, 4, 4, 4)
    expected = np.full((2, 2, 4), np.nan)
    for t, i, j in np.ndindex(2, 2, 4):
        if not (t == 0 and (i, j) == (0, 1)):
            expected[t, i, j] = np.nanmean(blocks[t, i, :, j, :])
    for subcells in (4, 8):
        remap = CrossGridRemap.build(source, target, "conservative", subcells, 0.5, Path("lr.nc"))
        result = remap.apply(as_array(values, source), source)
        np.testing.assert_allclose(result, expected, atol=1e-4, equal_nan=True)
    # Nearest: each LR centre sits on the corner of 4 source cells (factor 4); it takes one of them.
    nearest = CrossGridRemap.build(source, target, "nearest", 10, 0.5, Path("lr.nc"))
    picked = nearest.apply(as_array(values, source), source)[1]
    for i, j in np.ndindex(2, 4):
        corner = values[1, 3 + 4 * i : 5 + 4 * i, 1 + 4 * j : 3 + 4 * j]
        assert np.isclose(corner, picked[i, j], atol=1e-4).any()


@needs_knmi
def test_latlon_source_onto_the_real_knmi_radar_grid() -> None:
    """ERA5-like 0.1 deg lat/lon field onto the KNMI polar-stereographic grid coarsened x8 (8 km cells)."""
    with xr.open_dataset(KNMI) as radar:
        hr = detect_grid(radar.isel(y=slice(384, 480), x=slice(256, 352)), KNMI)
    target = lr_grid(hr, 8)
    lat = np.arange(57.0, 48.0, -0.1)
    lon = np.arange(-1.0, 12.0, 0.1)
    source = detect_grid(xr.Dataset(coords={"latitude": lat, "longitude": lon}), Path("era.nc"))
    lat2d, lon2d = np.meshgrid(lat, lon, indexing="ij")
    linear = (250 + 2 * lat2d + 3 * lon2d)[None]
    centre_lon, centre_lat = pyproj.Transformer.from_crs(hr.crs, "EPSG:4326", always_xy=True).transform(
        *np.meshgrid(target.x, target.y)
    )
    truth = 250 + 2 * centre_lat + 3 * centre_lon
    # Bilinear reproduces a linear field at the LR centres exactly.
    bilinear = CrossGridRemap.build(source, target, "bilinear", 10, 0.5, KNMI)
    np.testing.assert_allclose(bilinear.apply(as_array(linear, source), source)[0], truth, atol=1e-3)
    # Conservative: the area mean of a linear field is its value at the centroid, up to the curvature of the
    # projection over 8 km and the 0.1 deg source cells (each LR cell spans about 1.2 x 0.7 of them), which
    # the area weights average out to well below the field's 0.5 K change across one LR cell.
    remap = CrossGridRemap.build(source, target, "conservative", 10, 0.5, KNMI)
    conservative = remap.apply(as_array(linear, source), source)[0]
    assert np.abs(conservative - truth).max() < 0.06
    constant = remap.apply(as_array(np.full((1, *lat2d.shape), 3.5), source), source)
    np.testing.assert_allclose(constant, 3.5, atol=1e-6)
    # Only the source window around the 96 km domain is read, not the 90 x 130 cells of the source.
    assert remap.rows.stop - remap.rows.start < 15 and remap.cols.stop - remap.cols.start < 20


@needs_knmi
def test_real_radar_conservatively_onto_a_latlon_grid_keeps_the_rain_total() -> None:
    """Projected -> lat/lon with real data: KNMI radar (1 km) onto 0.25 deg cells over the Netherlands.

    The reference is the area mean over the radar pixels whose centres fall in each 0.25 deg cell (a few
    hundred per cell, so its own edge error is small). The lattice refines itself to the 1 km source:
    10 subcells per axis would sample one pixel in four.
    """
    with xr.open_dataset(KNMI) as radar:
        frame = radar.isel(time=slice(60, 62)).load()
    variable = next(name for name in frame.data_vars if frame[name].dims == ("time", "y", "x"))
    source = detect_grid(frame, KNMI)
    hr_lat = 53.2 - 0.0625 * np.arange(24)
    hr_lon = 4.0 + 0.0625 * np.arange(32)
    target = lr_grid(detect_grid(xr.Dataset(coords={"lat": hr_lat, "lon": hr_lon}), Path("hr.nc")), 4)
    remap = CrossGridRemap.build(source, target, "conservative", 10, 0.5, KNMI)
    result = remap.apply(frame[variable], source)
    assert result.shape == (2, 6, 8)
    values = frame[variable].values
    for i in range(6):
        for j in range(8):
            inside = (
                (source.lat <= target.y_edges[i])
                & (source.lat > target.y_edges[i + 1])
                & (source.lon >= target.x_edges[j])
                & (source.lon < target.x_edges[j + 1])
            )
            reference = np.nanmean(values[:, inside], axis=1)
            np.testing.assert_allclose(result[:, i, j], reference, rtol=0.01, atol=0.005)
    assert np.nanmax(result) > 0.5, "the frames chosen should hold rain"


def test_lr_source_not_covering_the_domain_is_a_one_line_error() -> None:
    source = projected_grid(np.arange(6) * 1000.0, np.arange(6) * 1000.0, LAEA)
    target = lr_grid(projected_grid(np.arange(8) * 1000.0, np.arange(8) * 1000.0, LAEA_EAST), 2)
    with pytest.raises(InputDataError, match=r"lr\.nc: 10 of 16 LR cells reach outside the LR source"):
        CrossGridRemap.build(source, target, "conservative", 4, 0.5, Path("lr.nc"))
    unreadable = SourceGrid("projected", "y", "x", source.y, source.x, source.lat, source.lon, "PROJCRS[a]")
    with pytest.raises(InputDataError, match=r"lr\.nc: projection 'PROJCRS\[a\]' is not understood by PROJ"):
        same_coordinates(unreadable, target, Path("lr.nc"))


def test_build_with_a_projected_lr_source_for_a_latlon_target(tmp_path: Path) -> None:
    """stride-data build end to end: HR on lat/lon, LR source on LAEA x/y regridded conservatively."""
    hr_lat, hr_lon = 52.4 - 0.05 * np.arange(8), 9.8 + 0.05 * np.arange(8)
    times = pd.date_range("2020-01-01", periods=3, freq="h")
    rng = np.random.default_rng(3)
    xr.Dataset(
        {
            "precip": (
                ("time", "lat", "lon"),
                rng.gamma(0.5, 1.0, (3, 8, 8)).astype("f4"),
                {"units": "mm h-1"},
            )
        },
        coords={"time": times, "lat": hr_lat, "lon": hr_lon},
    ).to_netcdf(tmp_path / "hr.nc", engine="h5netcdf")
    y, x = 60_000.0 - 2000.0 * np.arange(60), -40_000.0 + 2000.0 * np.arange(60)
    grid = projected_grid(y, x, LAEA)
    xr.Dataset(
        {
            "t2m": (("time", "y", "x"), np.full((3, 60, 60), 285.0, dtype="f4"), {"units": "K"}),
            "lat": (("y", "x"), grid.lat),
            "lon": (("y", "x"), grid.lon),
            "crs": ((), 0, {"grid_mapping_name": "lambert_azimuthal_equal_area", "crs_wkt": LAEA}),
        },
        coords={"time": times, "y": y, "x": x},
    ).to_netcdf(tmp_path / "lr.nc", engine="h5netcdf")
    config = tmp_path / "data.yaml"
    config.write_text(
        f"source: {{path: {tmp_path / 'hr.nc'}}}\nlr_source: {{path: {tmp_path / 'lr.nc'}}}\n"
        "target: [precip]\ndynamic: [t2m]\ncoarsen: {factor: 2}\n"
        "splits:\n  train: {start: 2020-01-01T00:00, end: 2020-01-01T02:00}\n"
    )
    assert main(["build", "--config", str(config), "--out", str(tmp_path / "dataset.zarr")]) == 0
    cond = xr.open_zarr(tmp_path / "dataset.zarr")["cond_dynamic"].values
    assert cond.shape == (3, 1, 4, 4)
    np.testing.assert_allclose(cond, 285.0, atol=1e-4)
