from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from stride_contracts import DatasetManifest
from stride_core.artifacts import read_zarr_manifest

CONFIG = """\
source: {{path: {path}}}
target: [precip]
dynamic: [precip]
static: [orography]
coarsen: {{factor: 4}}
splits:
  train: {{start: 2020-01-01T00:00, end: 2020-01-01T03:00}}
"""


def write_projected(path: Path, nan_west: bool = False) -> Path:
    """A 1 km stereographic-like grid: x/y in metres, 2-D lat/lon, a CF grid-mapping variable."""
    ny, nx = 20, 28
    y = np.arange(ny)[::-1] * 1000.0 - 4_000_000
    x = np.arange(nx) * 1000.0
    lat = 52.0 + (y[:, None] + 4_000_000) / 111_000 + 0 * x[None]
    lon = 4.0 + x[None] / 70_000 + 0 * y[:, None]
    rng = np.random.default_rng(0)
    precip = rng.gamma(0.3, 2.0, (4, ny, nx)).astype(np.float32)
    if nan_west:
        precip[:, :, :12] = np.nan
    ds = xr.Dataset(
        {
            "precip": (("time", "y", "x"), precip, {"units": "mm h-1", "grid_mapping": "crs"}),
            "orography": (("y", "x"), rng.uniform(0, 300, (ny, nx)).astype(np.float32), {"units": "m"}),
            "crs": ((), 0, {"grid_mapping_name": "polar_stereographic", "crs_wkt": "PROJCRS[test]"}),
        },
        coords={
            "time": pd.date_range("2020-01-01", periods=4, freq="h"),
            "y": y,
            "x": x,
            "lat": (("y", "x"), lat),
            "lon": (("y", "x"), lon),
        },
    )
    ds.to_netcdf(path, engine="h5netcdf")
    return path


def test_projected_grid_keeps_crs_and_2d_coordinates(
    build_from: Callable[[str], Callable[..., int]], tmp_path: Path
) -> None:
    build = build_from(CONFIG)
    assert build(write_projected(tmp_path / "radar.nc")) == 0
    manifest = read_zarr_manifest(tmp_path / "dataset.zarr", DatasetManifest)
    assert manifest.grid.kind == "projected" and manifest.grid.crs == "PROJCRS[test]"
    assert manifest.grid.hr_shape == (20, 28) and manifest.grid.lr_shape == (5, 7)
    ds = xr.open_zarr(tmp_path / "dataset.zarr")
    assert ds["lat"].dims == ("y", "x") and ds["lat_lr"].dims == ("y_lr", "x_lr")
    np.testing.assert_allclose(ds["x_lr"].values[:2], [1500.0, 5500.0])
    # Projected cells are equal-area: the LR value is the plain block mean.
    np.testing.assert_allclose(
        ds["cond_dynamic"].values[0, 0, 0, 0], ds["target"].values[0, 0, :4, :4].mean(), rtol=1e-5
    )


def test_regions_by_box_centre_and_name(
    build_from: Callable[[str], Callable[..., int]], tmp_path: Path
) -> None:
    build = build_from(CONFIG)
    source = write_projected(tmp_path / "radar.nc")
    assert build(source, "--set", "region.box={y0: 2, y1: 14, x0: 4, x1: 15}") == 0
    manifest = read_zarr_manifest(tmp_path / "dataset.zarr", DatasetManifest)
    assert manifest.grid.hr_shape == (12, 8) and manifest.grid.region == "rows 2:14 cols 4:15"
    assert build(source, "--set", "region.center=[52.1,4.2]", "--set", "region.size=[8,8]") == 0
    ds = xr.open_zarr(tmp_path / "dataset.zarr")
    assert ds["target"].shape[-2:] == (8, 8)
    assert abs(float(ds["lat"].mean()) - 52.1) < 0.05 and abs(float(ds["lon"].mean()) - 4.2) < 0.05
    regions = tmp_path / "regions.yaml"
    regions.write_text("corner: {lat: [52.0, 52.08], lon: [4.0, 4.1]}\n")
    assert build(source, "--set", "region.name=corner", "--set", f"region.regions_file={regions}") == 0
    # lat rows 11..19 (9 cells, trimmed to 8 by the factor) and lon cols 0..7
    assert read_zarr_manifest(tmp_path / "dataset.zarr", DatasetManifest).grid.hr_shape == (8, 8)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            ["--set", "region.center=[52.1,4.2]", "--set", "region.size=[80,8]"],
            "extends beyond the 20x28 grid",
        ),
        (["--set", "region.name=atlantis"], "region 'atlantis' is not defined"),
        (["--set", "region.center=[52.1,4.2]"], "center and size go together"),
        (["--set", "region.name=alps"], "lies outside the grid"),
    ],
)
def test_region_errors(
    build_from: Callable[[str], Callable[..., int]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    message: str,
) -> None:
    build = build_from(CONFIG)
    assert build(write_projected(tmp_path / "radar.nc"), *extra) == 2
    assert message in capsys.readouterr().err


def test_nan_coverage_needs_a_fill_and_targets_keep_nan(
    build_from: Callable[[str], Callable[..., int]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    build = build_from(CONFIG)
    source = write_projected(tmp_path / "radar.nc", nan_west=True)
    assert build(source) == 2
    assert "set conditioning_fill.precip" in capsys.readouterr().err
    assert build(source, "--set", "conditioning_fill.precip=0.0") == 0
    ds = xr.open_zarr(tmp_path / "dataset.zarr")
    assert np.isfinite(ds["cond_dynamic"].values).all()
    assert np.isnan(ds["target"].values[..., :12]).all() and np.isfinite(ds["target"].values[..., 12:]).all()


def test_a_region_where_the_target_is_all_nan(
    build_from: Callable[[str], Callable[..., int]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    build = build_from(CONFIG)
    source = write_projected(tmp_path / "radar.nc", nan_west=True)
    assert build(source, "--set", "region.box={y0: 0, y1: 8, x0: 0, x1: 12}") == 2
    err = capsys.readouterr().err.strip()
    assert (
        "radar.nc: variable 'precip' is entirely NaN in the selected region and times; choose another" in err
    )
    assert "\n" not in err and not (tmp_path / "dataset.zarr").exists()
