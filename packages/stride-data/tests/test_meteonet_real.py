"""Real data: AROME precipitation (HR, 0.025 deg) conditioned on ARPEGE t2m (0.1 deg) regridded onto the LR grid.

ARPEGE points coincide with every 4th AROME point. The LR grid is AROME coarsened x4, so LR cell (i, j) covers
AROME cells 4i..4i+3 x 4j..4j+3: its centre lies 1.5 AROME cells (0.0375 deg) south-east of ARPEGE point
(i, j). Hence:
- nearest picks ARPEGE (i, j) itself (0.0375 deg away, against 0.0625 deg for (i+1, j+1));
- conservative averages the four ARPEGE cells the LR cell overlaps, with overlap weights 0.625 / 0.375 per
  axis (ARPEGE cell i spans +-0.05 deg around its point), times cos(latitude) for cell area;
- bilinear interpolates at 0.375 of the way to the next point: the same 0.625 / 0.375 weights, without the
  area factor.
So conservative and nearest differ by how much t2m varies within 0.1 deg: small on average, up to a few K at
coasts and relief.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from stride_contracts import DatasetManifest
from stride_core.artifacts import read_zarr_manifest
from stride_data.cli import main
from stride_data.grids import detect_grid
from stride_data.regrid import lr_grid, regrid

REPO = Path(__file__).resolve().parents[3]
DATA = Path(os.environ.get("STRIDE_DATA") or REPO.parent / "shared" / "data")
AROME = DATA / "meteonet_nw_2018-05-01.nc"
ARPEGE = DATA / "meteonet_nw_arpege_t2m_2018-05-01.nc"
H, W = 56, 78  # LR shape of the 224 x 312 AROME cells kept with factor 4

pytestmark = pytest.mark.skipif(
    not (AROME.is_file() and ARPEGE.is_file()),
    reason=f"real MeteoNet sample missing: {AROME} / {ARPEGE}; set STRIDE_DATA to the folder holding them",
)


def arpege() -> xr.Dataset:
    return xr.open_dataset(ARPEGE, engine="h5netcdf")


def overlap_mix(t2m: np.ndarray, area_weighted: bool) -> np.ndarray:
    """0.625 / 0.375 mix of ARPEGE points (i, i+1) x (j, j+1), optionally area-weighted by cos(latitude)."""
    lat = arpege()["latitude"].values
    north = 0.625 * (np.cos(np.deg2rad(lat[:H])) if area_weighted else 1.0)
    south = 0.375 * (np.cos(np.deg2rad(lat[1 : H + 1])) if area_weighted else 1.0)
    north, south = north / (north + south), south / (north + south)

    def west_east(i: int) -> np.ndarray:
        return 0.625 * t2m[:, i : i + H, :W] + 0.375 * t2m[:, i : i + H, 1 : W + 1]

    return np.reshape(north, (-1, 1)) * west_east(0) + np.reshape(south, (-1, 1)) * west_east(1)


def test_meteonet_build_regrids_arpege_onto_the_lr_grid(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO)  # the config names configs/variables_meteonet.yaml relative to the repository
    monkeypatch.setenv("STRIDE_DATA", str(DATA))
    out = tmp_path / "dataset.zarr"
    assert main(["build", "--config", "configs/meteonet_nw.yaml", "--out", str(out)]) == 0
    manifest = read_zarr_manifest(out, DatasetManifest)
    assert manifest.grid.hr_shape == (224, 312) and manifest.grid.lr_shape == (H, W)
    assert (manifest.grid.lr_method, manifest.grid.lr_regrid_method) == ("regridded", "conservative")
    assert [(Path(s.path).name, s.role) for s in manifest.sources] == [
        (AROME.name, "hr"),
        (ARPEGE.name, "lr"),
    ]
    assert (manifest.target[0].name, manifest.target[0].units, manifest.target[0].source_name) == (
        "precip",
        "mm",
        "tp",
    )
    # ARPEGE has +0..+24 h, AROME +1..+24 h: the 24 common valid times stay (the +0 h step is dropped).
    assert manifest.n_times == 24
    ds = xr.open_zarr(out)
    arome = xr.open_dataset(AROME, engine="h5netcdf")
    np.testing.assert_array_equal(ds["target"].values[:, 0], arome["tp"].values[:, :224, :312])
    t2m = arpege()["t2m"].values[1:].astype(np.float64)
    cond = ds["cond_dynamic"].values[:, 0].astype(np.float64)
    np.testing.assert_allclose(cond, overlap_mix(t2m, area_weighted=True), atol=1e-3)
    at_points = np.abs(cond - t2m[:, :H, :W])
    assert at_points.mean() < 0.25 and at_points.max() < 3.0, (at_points.mean(), at_points.max())


def test_meteonet_nearest_and_bilinear() -> None:
    hr = xr.open_dataset(AROME, engine="h5netcdf").isel(latitude=slice(0, 224), longitude=slice(0, 312))
    target = lr_grid(detect_grid(hr, AROME), 4)
    source = arpege()
    grid = detect_grid(source, ARPEGE)
    t2m = source["t2m"].values.astype(np.float64)
    nearest = regrid(source["t2m"], grid, target, "nearest", 0.5)
    np.testing.assert_array_equal(nearest, t2m[:, :H, :W].astype(np.float32))
    bilinear = regrid(source["t2m"], grid, target, "bilinear", 0.5)
    np.testing.assert_allclose(bilinear, overlap_mix(t2m, area_weighted=False), atol=1e-3)
