"""Downscaling a climate projection, end to end on real data: train on a reanalysis pair, apply to LR-only
input with another calendar, other longitudes and other units, and no truth.

Training: HR ERA5 t2m (0.25 deg) with a separate LR source, a 1-degree block mean of the same file written by
the test. Inference: that LR file as a climate model would deliver it: converted to a `360_day` calendar
(xarray convert_calendar drops the 31st), longitudes shifted to 0..360 (the UK domain straddles 0 deg, so the
axis wraps) and units changed to degC. The samples are checked in samples.zarr and in their NetCDF export
(`stride-generate export --format netcdf`), read back undecoded (the raw CF attributes, the time numbers
decoded here with cftime): the time axis keeps the `360_day` calendar, the variables carry the registry's units
and the lat/lon coordinates are the training grid's. The second test goes the other way round: a model trained
in a `360_day` calendar downscales a standard-calendar input.
"""

from __future__ import annotations

from pathlib import Path

import cftime
import numpy as np
import pytest
import xarray as xr
import zarr
from conftest import DATA, ERA5, SMOKE_MODEL, chain_commands, run_chain, run_cli

pytestmark = pytest.mark.e2e

TRAIN = """\
source: {{path: {era5}}}
target: [t2m]
dynamic: [t2m]
static: [orography, lsm]
coarsen: {{factor: 4}}
lr_source: {{path: {lr}}}
region: {{center: [54.0, -4.0], size: [16, 24]}}
splits:
  train: {{start: 2019-03-01T00:00, end: 2019-03-21T23:00}}
  val: {{start: 2019-03-22T00:00, end: 2019-03-25T23:00}}
  test: {{start: 2019-03-26T00:00, end: {test_end}}}
"""


def write_lr_files(out: Path) -> tuple[Path, Path]:
    era5 = xr.open_dataset(DATA / ERA5, engine="h5netcdf")
    lr = (
        era5["t2m"]
        .isel(latitude=slice(0, 32), longitude=slice(0, 48))
        .coarsen(latitude=4, longitude=4)
        .mean()
    )
    lr.attrs["units"] = "K"
    training = lr.to_dataset(name="t2m")
    training.to_netcdf(out / "lr.nc", engine="h5netcdf")
    # The projection-like input: 360_day calendar, longitudes 0..360, degC.
    projection = training.convert_calendar("360_day", align_on="date")
    projection["t2m"] = projection["t2m"] - 273.15
    projection["t2m"].attrs["units"] = "degC"
    projection = projection.assign_coords(longitude=projection["longitude"] % 360).sortby("longitude")
    projection.to_netcdf(out / "projection_360day.nc", engine="h5netcdf")
    return out / "lr.nc", out / "projection_360day.nc"


def projection_chain(out: Path) -> list[list[str]]:
    """Build on out/train.yaml, train at smoke budget, build out/inference.yaml on it, generate 2 members."""
    training = chain_commands(
        out,
        data=["--config", f"{out}/train.yaml"],
        train=[
            "--config",
            "configs/train_era5_uk.yaml",
            "--steps",
            "20",
            *SMOKE_MODEL,
            "--set",
            "training.val_every=10",
            "--set",
            "training.batch_size=8",
            "--set",
            "inline_eval.dates=2",
            "--set",
            "inline_eval.members=2",
        ],
        generate=[],
    )[:3]  # build, stats, train
    return [
        *training,
        ["stride-data", "build", "--config", f"{out}/inference.yaml", "--out", f"{out}/projection.zarr"],
        [
            "stride-generate",
            "--config",
            "configs/generate_era5_uk.yaml",
            "--checkpoint",
            f"{out}/checkpoint",
            "--dataset",
            f"{out}/projection.zarr",
            "--out",
            f"{out}/samples.zarr",
            "--members",
            "2",
            "--steps",
            "4",
            "--set",
            "date_stride=120",
        ],
    ]


def test_train_on_reanalysis_downscale_a_360_day_projection(tmp_path: Path, cli_env: dict[str, str]) -> None:
    lr, projection = write_lr_files(tmp_path)
    (tmp_path / "train.yaml").write_text(TRAIN.format(era5=ERA5, lr=lr, test_end="2019-03-31T23:00"))
    (tmp_path / "inference.yaml").write_text(
        f"reference: {tmp_path}/dataset.zarr\nlr_source: {{path: {projection}}}\n"
    )
    out = tmp_path
    run_chain(projection_chain(out), cli_env)
    training = xr.open_zarr(out / "dataset.zarr")
    manifest = zarr.open_group(out / "projection.zarr", mode="r").attrs["stride"]
    assert manifest["has_target"] is False and list(manifest["splits"]) == ["test"]
    assert manifest["dynamic"][0]["source_units"] == "degC" and manifest["dynamic"][0]["units"] == "K"
    assert manifest["registry"]["t2m"]["units"] == "K"
    inference = xr.open_zarr(out / "projection.zarr", decode_times=xr.coders.CFDatetimeCoder(use_cftime=True))
    assert np.isnan(inference["target"].values).all()
    np.testing.assert_array_equal(inference["cond_static"].values, training["cond_static"].values)
    # The same LR field as in training at a date both calendars share, after degC -> K and the 0..360 wrap.
    day = cftime.Datetime360Day(2019, 3, 10, 12)
    assert inference["time"].values[0].calendar == "360_day"
    np.testing.assert_allclose(
        inference["cond_dynamic"].sel(time=day).values,
        training["cond_dynamic"].sel(time="2019-03-10T12:00").values,
        atol=1e-4,
    )

    samples = xr.open_zarr(out / "samples.zarr", decode_times=xr.coders.CFDatetimeCoder(use_cftime=True))
    sample_manifest = zarr.open_group(out / "samples.zarr", mode="r").attrs["stride"]
    assert sample_manifest["has_target"] is False
    assert [v["units"] for v in sample_manifest["target"]] == ["K"]
    assert all(t.calendar == "360_day" for t in samples["time"].values)
    assert samples["members"].shape[1:] == (2, 1, 16, 24)
    for name in ("lat", "lon"):
        np.testing.assert_array_equal(samples[name].values, training[name].values)
    members = samples["members"].values
    assert np.isfinite(members).all() and 240 < members.mean() < 300

    # The export: CF NetCDF with the projection's calendar, the target's units and the HR grid's coordinates.
    exported = run_cli(
        [
            "stride-generate",
            "export",
            "--format",
            "netcdf",
            "--samples",
            f"{out}/samples.zarr",
            "--out",
            f"{out}/samples.nc",
        ],
        cli_env,
    )
    assert exported.returncode == 0, exported.stderr
    with xr.open_dataset(out / "samples.nc", engine="h5netcdf", decode_times=False) as nc:
        time = nc["time"]
        assert time.attrs["calendar"] == "360_day"
        dates = cftime.num2date(time.values, time.attrs["units"], calendar=time.attrs["calendar"])
        assert [d.isoformat() for d in dates] == [d.isoformat() for d in samples["time"].values]
        assert all(d.calendar == "360_day" for d in dates)
        t2m = nc["t2m"]
        assert t2m.attrs["units"] == "K"
        assert t2m.dims[:2] == ("time", "realization")
        assert t2m.shape == (len(dates), 2, 16, 24)
        np.testing.assert_allclose(t2m.values, members[:, :, 0], rtol=1e-6)
        for name, units in (("lat", "degrees_north"), ("lon", "degrees_east")):
            assert nc[name].attrs["units"] == units
            np.testing.assert_allclose(nc[name].values, training[name].values)

    # stride-eval needs truth: one line, exit 2.
    refused = run_cli(
        ["stride-eval", "--samples", f"{out}/samples.zarr", "--out", f"{out}/m.parquet"], cli_env
    )
    assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1


def test_train_on_a_360_day_model_downscale_a_standard_calendar_input(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    """The other way round: trained on data in a 360_day calendar (the real ERA5 file and its LR block mean,
    both converted; split dates in that calendar, which has no 31 March), applied to the LR file in its own
    standard calendar. The samples keep the input's calendar and time stamps."""
    lr, _ = write_lr_files(tmp_path)
    with xr.open_dataset(DATA / ERA5, engine="h5netcdf") as era5:
        era5.load().convert_calendar("360_day", align_on="date").to_netcdf(
            tmp_path / "hr_360.nc", engine="h5netcdf"
        )
    with xr.open_dataset(lr, engine="h5netcdf") as standard:
        standard.load().convert_calendar("360_day", align_on="date").to_netcdf(
            tmp_path / "lr_360.nc", engine="h5netcdf"
        )
    (tmp_path / "train.yaml").write_text(
        TRAIN.format(era5=tmp_path / "hr_360.nc", lr=tmp_path / "lr_360.nc", test_end="2019-03-30T23:00")
    )
    (tmp_path / "inference.yaml").write_text(
        f"reference: {tmp_path}/dataset.zarr\nlr_source: {{path: {lr}}}\n"
    )
    out = tmp_path
    run_chain(projection_chain(out), cli_env)

    cftime_times = xr.coders.CFDatetimeCoder(use_cftime=True)
    training = xr.open_zarr(out / "dataset.zarr", decode_times=cftime_times)
    assert zarr.open_group(out / "dataset.zarr", mode="r").attrs["stride"]["calendar"] == "360_day"
    assert training["time"].values[0].calendar == "360_day"
    inference = xr.open_zarr(out / "projection.zarr")
    assert np.issubdtype(inference["time"].dtype, np.datetime64) and inference.sizes["time"] == 744
    # 10 March exists in both calendars: the same LR field reaches the network.
    np.testing.assert_allclose(
        inference["cond_dynamic"].sel(time="2019-03-10T12:00").values,
        training["cond_dynamic"].sel(time=cftime.Datetime360Day(2019, 3, 10, 12)).values,
        atol=1e-4,
    )
    samples = xr.open_zarr(out / "samples.zarr")
    np.testing.assert_array_equal(samples["time"].values, inference["time"].values[::120])
    assert "2019-03-31T00:00" in str(samples["time"].values[-1])  # a day the training calendar lacks
    members = samples["members"].values
    assert np.isfinite(members).all() and 240 < members.mean() < 300
