"""LR conditioning from a separate LR source, regridded onto the LR grid (synthetic grids with known answers)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from stride_contracts import DatasetManifest
from stride_core.artifacts import read_zarr_manifest
from stride_data.cli import main
from stride_data.grids import SourceGrid, detect_grid
from stride_data.regrid import lr_grid, regrid

# HR: 16 x 24 cells of 0.125 deg; factor 4 -> LR cells of 0.5 deg with edges at 52.0625 - 0.5 k, -0.0625 + 0.5 k.
HR_LAT = 52.0 - 0.125 * np.arange(16)
HR_LON = 0.125 * np.arange(24)
# LR source: 0.25 deg cells whose edges fall on the LR edges, one extra cell beyond the domain on every side, so
# LR cell (i, j) is exactly source cells (2i+1 .. 2i+2, 2j+1 .. 2j+2).
LR_LAT = 52.1875 - 0.25 * np.arange(10)
LR_LON = -0.1875 + 0.25 * np.arange(14)


def write_hr(path: Path) -> Path:
    rng = np.random.default_rng(1)
    ds = xr.Dataset(
        {
            "precip": (
                ("time", "lat", "lon"),
                rng.gamma(0.5, 1.0, (6, 16, 24)).astype("f4"),
                {"units": "mm h-1"},
            ),
            "orography": (("lat", "lon"), rng.uniform(0, 300, (16, 24)).astype("f4"), {"units": "m"}),
        },
        coords={"time": pd.date_range("2020-01-01", periods=6, freq="h"), "lat": HR_LAT, "lon": HR_LON},
    )
    ds.to_netcdf(path, engine="h5netcdf")
    return path


def lr_dataset(
    lat: np.ndarray = LR_LAT, lon: np.ndarray = LR_LON, start: str = "2020-01-01T03:00", units: str = "K"
) -> xr.Dataset:
    rng = np.random.default_rng(2)
    values = 280 + 5 * rng.standard_normal((7, len(lat), len(lon))).astype("f4")
    return xr.Dataset(
        {"temp2m": (("time", "latitude", "longitude"), values, {"units": units})},
        coords={"time": pd.date_range(start, periods=7, freq="h"), "latitude": lat, "longitude": lon},
    )


def build(tmp_path: Path, lr: Path, *extra: str) -> int:
    config = tmp_path / "data.yaml"
    config.write_text(
        f"source: {{path: {write_hr(tmp_path / 'hr.nc')}}}\n"
        f"lr_source: {{path: {lr}, variables: {{t2m: temp2m}}}}\n"
        "target: [precip]\ndynamic: [t2m]\nstatic: [orography]\ncoarsen: {factor: 4}\n"
        "splits:\n  train: {start: 2020-01-01T00:00, end: 2020-01-01T05:00}\n"
    )
    return main(["build", "--config", str(config), "--out", str(tmp_path / "dataset.zarr"), *extra])


def expected_conservative(values: np.ndarray) -> np.ndarray:
    """Area-weighted (cos latitude) mean of the 2 x 2 source cells inside each LR cell."""
    weights = np.cos(np.deg2rad(LR_LAT))[:, None] * np.ones(len(LR_LON))
    inner_v, inner_w = values[..., 1:9, 1:13], weights[1:9, 1:13]
    blocks_v = (inner_v * inner_w).reshape(*values.shape[:-2], 4, 2, 6, 2).sum(axis=(-3, -1))
    return blocks_v / inner_w.reshape(4, 2, 6, 2).sum(axis=(-3, -1))


def test_conservative_lr_source_keeps_common_times_and_records_provenance(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    lr = tmp_path / "lr.nc"
    lr_dataset().to_netcdf(lr, engine="h5netcdf")
    logging.getLogger("stride-data").addHandler(caplog.handler)
    try:
        assert build(tmp_path, lr) == 0
    finally:
        logging.getLogger("stride-data").removeHandler(caplog.handler)
    # HR 00..05 h, LR 03..09 h: the three common steps stay, and both sides' dropped steps are logged.
    assert "dropping 3 HR time step(s) absent from lr.nc" in caplog.text
    assert "dropping 4 LR time step(s) absent from hr.nc" in caplog.text
    ds = xr.open_zarr(tmp_path / "dataset.zarr")
    assert list(pd.DatetimeIndex(ds["time"].values).hour) == [3, 4, 5]
    assert ds["cond_dynamic"].shape == (3, 1, 4, 6)
    source = lr_dataset()["temp2m"].values[:3].astype(np.float64)
    np.testing.assert_allclose(ds["cond_dynamic"].values[:, 0], expected_conservative(source), atol=1e-4)
    manifest = read_zarr_manifest(tmp_path / "dataset.zarr", DatasetManifest)
    assert manifest.grid.lr_method == "regridded" and manifest.grid.lr_regrid_method == "conservative"
    assert [(Path(s.path).name, s.role, s.variables) for s in manifest.sources] == [
        ("hr.nc", "hr", ["orography", "precip"]),
        ("lr.nc", "lr", ["temp2m"]),
    ]


def latlon_grid(lat: np.ndarray, lon: np.ndarray) -> SourceGrid:
    return detect_grid(xr.Dataset(coords={"latitude": lat, "longitude": lon}), Path("grid.nc"))


def test_regrid_methods_and_nan_threshold() -> None:
    target = lr_grid(latlon_grid(HR_LAT, HR_LON), 4)
    array = lr_dataset()["temp2m"].isel(time=slice(0, 1)).astype("f8")
    values = array.values.copy()
    # LR cell (0, 0) = source rows 1-2, cols 1-2: one NaN keeps it (3/4 valid >= 0.5), three NaN void it.
    values[0, 1, 1] = np.nan
    values[0, 1:3, 3] = np.nan
    values[0, 2, 4] = np.nan
    source = latlon_grid(LR_LAT, LR_LON)
    conservative = regrid(array.copy(data=values), source, target, "conservative", 0.5)[0]
    w = np.cos(np.deg2rad(LR_LAT[[1, 2, 2]]))
    kept = values[0, [1, 2, 2], [2, 1, 2]]
    assert conservative[0, 0] == pytest.approx((w * kept).sum() / w.sum(), abs=1e-4)
    assert np.isnan(conservative[0, 1]) and np.isfinite(conservative[1:]).all()
    # The LR centres sit on source edges: nearest takes one of the four cells, bilinear their plain mean.
    bilinear = regrid(array, source, target, "bilinear", 0.5)[0]
    src = array.values[0]
    np.testing.assert_allclose(bilinear, src[1:9, 1:13].reshape(4, 2, 6, 2).mean(axis=(1, 3)), atol=1e-4)
    nearest = regrid(array, source, target, "nearest", 0.5)[0]
    blocks = src[1:9, 1:13].reshape(4, 2, 6, 2).transpose(0, 2, 1, 3).reshape(4, 6, 4)
    assert all(nearest[i, j] in blocks[i, j] for i in range(4) for j in range(6))


def test_longitudes_0_360_are_wrapped_onto_the_target() -> None:
    lon = (LR_LON - 10.0) % 360.0  # a source in 0..360 for a target west of Greenwich
    array = lr_dataset(lon=lon)["temp2m"].isel(time=slice(0, 1)).astype("f8")
    target = lr_grid(latlon_grid(HR_LAT, HR_LON - 10.0), 4)
    result = regrid(array, latlon_grid(LR_LAT, lon), target, "conservative", 0.5)
    np.testing.assert_allclose(result, expected_conservative(array.values), atol=1e-4)


MIXED = ["--set", "dynamic=[t2m, precip]", "--set", "coarsened_dynamic=[precip]"]


def test_coarsened_dynamic_mixes_the_coarsened_hr_field_with_the_lr_source(tmp_path: Path) -> None:
    # A perfect-prognosis pair with a large-scale precipitation predictor: precip coarsened from the HR source
    # (a stand-in for reanalysis precipitation) beside t2m regridded from the LR source, in `dynamic`'s order.
    lr = tmp_path / "lr.nc"
    lr_dataset().to_netcdf(lr, engine="h5netcdf")
    assert build(tmp_path, lr, *MIXED) == 0
    ds = xr.open_zarr(tmp_path / "dataset.zarr")
    assert list(ds["dynamic_var"].values) == ["t2m", "precip"]
    assert ds["cond_dynamic"].shape == (3, 2, 4, 6)
    source = lr_dataset()["temp2m"].values[:3].astype(np.float64)
    np.testing.assert_allclose(ds["cond_dynamic"].values[:, 0], expected_conservative(source), atol=1e-4)
    # The coarsened precip: the cos-latitude weighted mean of each 4 x 4 block of HR cells (steps 03..05 h).
    hr = xr.open_dataset(tmp_path / "hr.nc")["precip"].values[3:6].astype(np.float64)
    weights = np.cos(np.deg2rad(HR_LAT))[:, None] * np.ones(len(HR_LON))
    blocks = (hr * weights).reshape(3, 4, 4, 6, 4).sum(axis=(2, 4))
    expected = blocks / weights.reshape(4, 4, 6, 4).sum(axis=(1, 3))
    np.testing.assert_allclose(ds["cond_dynamic"].values[:, 1], expected, rtol=1e-5)
    manifest = read_zarr_manifest(tmp_path / "dataset.zarr", DatasetManifest)
    assert [(Path(s.path).name, s.role, s.variables) for s in manifest.sources] == [
        ("hr.nc", "hr", ["orography", "precip"]),
        ("lr.nc", "lr", ["temp2m"]),
    ]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            ["--set", "coarsened_dynamic=[precip]"],
            "coarsened_dynamic names ['precip'], which are not dynamic",
        ),
        (["--set", "coarsened_dynamic=[t2m]"], "are in both coarsened_dynamic and lr_source.variables"),
        (
            [*MIXED, "--set", "lr_source.context_margin=1"],
            "coarsened_dynamic needs lr_source.context_margin 0",
        ),
    ],
)
def test_coarsened_dynamic_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    lr_dataset().to_netcdf(tmp_path / "lr.nc", engine="h5netcdf")
    assert build(tmp_path, tmp_path / "lr.nc", *extra) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert message in err, err


@pytest.mark.parametrize(
    ("lr", "extra", "message"),
    [
        (
            lr_dataset(lat=LR_LAT[2:]),
            [],
            "lr.nc: the LR source spans lat 49.81..51.81, lon -0.3125..3.188 but conservative regridding "
            "needs lat 50.06..52.06",
        ),
        (lr_dataset(start="2021-01-01"), [], "lr.nc: no time step in common with"),
        (lr_dataset(units="hPa"), [], "variable 'temp2m' has units 'hPa', the registry expects 'K'"),
        (lr_dataset(), ["--set", "lr_source.variables={t2m: t2m}"], "fix lr_source.variables.t2m"),
        (lr_dataset(), ["--set", "lr_source.variables={u10: temp2m}"], "lr_source.variables names ['u10']"),
    ],
)
def test_lr_source_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], lr: xr.Dataset, extra: list[str], message: str
) -> None:
    lr.to_netcdf(tmp_path / "lr.nc", engine="h5netcdf")
    assert build(tmp_path, tmp_path / "lr.nc", *extra) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert message in err, err
    assert not (tmp_path / "dataset.zarr").exists()
