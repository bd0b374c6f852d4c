"""Inference datasets (no HR source: a reference training dataset + an LR-only file) and the LR context region."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from stride_contracts import DatasetManifest
from stride_core.artifacts import read_zarr_manifest
from stride_data.cli import main

HR_LAT = 52.0 - 0.125 * np.arange(16)
HR_LON = -1.0 + 0.125 * np.arange(24)
# LR source cells of 0.25 deg, edges on the LR (0.5 deg) edges, two source cells (one LR cell) beyond the domain.
LR_LAT = 52.4375 - 0.25 * np.arange(12)
LR_LON = -1.4375 + 0.25 * np.arange(16)


def write_files(tmp_path: Path) -> tuple[Path, Path]:
    rng = np.random.default_rng(3)
    hr = xr.Dataset(
        {
            "t2m": (
                ("time", "lat", "lon"),
                280 + rng.standard_normal((6, 16, 24)).astype("f4"),
                {"units": "K"},
            ),
            "orography": (("lat", "lon"), rng.uniform(0, 300, (16, 24)).astype("f4"), {"units": "m"}),
        },
        coords={"time": pd.date_range("2020-01-01", periods=6, freq="h"), "lat": HR_LAT, "lon": HR_LON},
    )
    hr.to_netcdf(tmp_path / "hr.nc", engine="h5netcdf")
    values = 280 + 5 * rng.standard_normal((6, len(LR_LAT), len(LR_LON))).astype("f4")
    lr = xr.Dataset(
        {"t2m": (("time", "latitude", "longitude"), values, {"units": "K"})},
        coords={"time": hr["time"].values, "latitude": LR_LAT, "longitude": LR_LON},
    )
    lr.to_netcdf(tmp_path / "lr.nc", engine="h5netcdf")
    # The same field as a climate model might write it: degC, longitudes 0..360 (the domain straddles 0 deg).
    gcm = lr.assign(t2m=lambda d: (d["t2m"] - 273.15).assign_attrs(units="degC"))
    gcm = gcm.assign_coords(longitude=gcm["longitude"] % 360).sortby("longitude")
    gcm.to_netcdf(tmp_path / "gcm.nc", engine="h5netcdf")
    return tmp_path / "lr.nc", tmp_path / "gcm.nc"


def test_inference_dataset_reuses_the_reference_grid_and_converts_units_and_longitudes(
    tmp_path: Path,
) -> None:
    lr, gcm = write_files(tmp_path)
    (tmp_path / "train.yaml").write_text(
        f"source: {{path: {tmp_path / 'hr.nc'}}}\nlr_source: {{path: {lr}, context_margin: 1}}\n"
        "target: [t2m]\ndynamic: [t2m]\nstatic: [orography]\ncoarsen: {factor: 4}\n"
        "splits:\n  train: {start: 2020-01-01T00:00, end: 2020-01-01T05:00}\n"
    )
    assert (
        main(["build", "--config", str(tmp_path / "train.yaml"), "--out", str(tmp_path / "train.zarr")]) == 0
    )
    (tmp_path / "inf.yaml").write_text(f"reference: {tmp_path / 'train.zarr'}\nlr_source: {{path: {gcm}}}\n")
    assert main(["build", "--config", str(tmp_path / "inf.yaml"), "--out", str(tmp_path / "inf.zarr")]) == 0

    train, inference = xr.open_zarr(tmp_path / "train.zarr"), xr.open_zarr(tmp_path / "inf.zarr")
    # The context region: the LR grid (4 x 6 cells of 0.5 deg) plus one LR cell on every side, each the
    # cos-latitude weighted mean of its 2 x 2 source cells; its interior is cond_dynamic.
    assert train["cond_context"].shape == (6, 1, 6, 8)
    source = xr.open_dataset(lr, engine="h5netcdf")["t2m"].values.astype(np.float64)
    weights = np.cos(np.deg2rad(LR_LAT))[:, None] * np.ones(len(LR_LON))
    blocks = (source * weights).reshape(6, 6, 2, 8, 2).sum(axis=(2, 4)) / weights.reshape(6, 2, 8, 2).sum(
        axis=(1, 3)
    )
    np.testing.assert_allclose(train["cond_context"].values[:, 0], blocks, rtol=1e-5)
    np.testing.assert_array_equal(
        train["cond_dynamic"].values, train["cond_context"].values[:, :, 1:-1, 1:-1]
    )
    # Inference: the same fields after degC -> K and the 0..360 wrap, the reference's statics, no target.
    np.testing.assert_allclose(inference["cond_context"].values, train["cond_context"].values, atol=1e-4)
    np.testing.assert_array_equal(inference["cond_static"].values, train["cond_static"].values)
    assert np.isnan(inference["target"].values).all()
    assert (inference["split"].values == 2).all()
    manifest = read_zarr_manifest(tmp_path / "inf.zarr", DatasetManifest)
    assert not manifest.has_target and list(manifest.splits) == ["test"]
    assert (
        manifest.dynamic[0].source_units == "degC" and manifest.dynamic[0].conversion == "degC -> K: + 273.15"
    )
    assert manifest.grid.context_margin == 1 and [s.role for s in manifest.sources] == ["reference", "lr"]
    assert manifest.registry["t2m"]["units"] == "K"


def test_inference_refuses_variables_the_reference_lacks(tmp_path: Path) -> None:
    lr, gcm = write_files(tmp_path)
    (tmp_path / "train.yaml").write_text(
        f"source: {{path: {tmp_path / 'hr.nc'}}}\nlr_source: {{path: {lr}}}\n"
        "target: [t2m]\ndynamic: [t2m]\ncoarsen: {factor: 4}\n"
        "splits:\n  train: {start: 2020-01-01T00:00, end: 2020-01-01T05:00}\n"
    )
    assert (
        main(["build", "--config", str(tmp_path / "train.yaml"), "--out", str(tmp_path / "train.zarr")]) == 0
    )
    (tmp_path / "inf.yaml").write_text(
        f"reference: {tmp_path / 'train.zarr'}\nlr_source: {{path: {gcm}}}\ndynamic: [u10]\n"
    )
    assert main(["build", "--config", str(tmp_path / "inf.yaml"), "--out", str(tmp_path / "inf.zarr")]) == 2
