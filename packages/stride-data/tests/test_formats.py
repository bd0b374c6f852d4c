"""Sources are recognised by content, not extension: NetCDF-4, classic NetCDF, GRIB (optional extra), Zarr."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from stride_core.errors import InputDataError
from stride_data import formats
from stride_data.formats import choose_engine, detect_format
from stride_data.sources import open_source


def small() -> xr.Dataset:
    return xr.Dataset(
        {"t2m": (("time", "latitude", "longitude"), np.full((2, 5, 6), 280.0, "f4"), {"units": "K"})},
        coords={
            "time": pd.date_range("2020-01-01", periods=2, freq="h"),
            "latitude": np.linspace(52.0, 51.0, 5),
            "longitude": np.linspace(0.0, 1.25, 6),
        },
    )


def test_format_comes_from_content_not_extension(tmp_path: Path) -> None:
    small().to_netcdf(tmp_path / "a.grib", engine="h5netcdf")  # NetCDF-4 under a GRIB name
    small().to_netcdf(tmp_path / "b.nc4", engine="scipy")  # classic NetCDF
    small().to_zarr(tmp_path / "c.nc", zarr_format=3, consolidated=False)  # a Zarr store named like a file
    assert choose_engine(tmp_path / "a.grib", "auto") == ("netcdf4", "h5netcdf")
    # netCDF4 reads every classic variant (scipy not CDF-5), so it comes first where installed (a test
    # extra, compliance-checker, brings it into the CI environment).
    classic = "netcdf4" if importlib.util.find_spec("netCDF4") else "scipy"
    assert choose_engine(tmp_path / "b.nc4", "auto") == ("netcdf3", classic)
    assert choose_engine(tmp_path / "c.nc", "auto") == ("zarr", "zarr")
    for name in ("a.grib", "b.nc4", "c.nc"):
        dataset, _ = open_source(tmp_path / name)
        np.testing.assert_array_equal(dataset["t2m"].values, small()["t2m"].values)


@pytest.mark.parametrize(
    ("content", "engine", "message"),
    [
        (
            b"<html>404 Not Found</html>",
            "auto",
            "fake.nc: is not a NetCDF, GRIB or Zarr source (it starts with b'<html>",
        ),
        (
            b"\x89HDF\r\n\x1a\n" + bytes(64),
            "zarr",
            "fake.nc: is a NetCDF-4 (HDF5) file, which engine 'zarr' cannot read",
        ),
        (
            b"\x89HDF\r\n\x1a\n" + bytes(64),
            "auto",
            "fake.nc: looks like a NetCDF-4 (HDF5) file but engine 'h5netcdf'",
        ),
    ],
)
def test_a_source_that_is_not_what_it_claims(
    tmp_path: Path, content: bytes, engine: str, message: str
) -> None:
    fake = tmp_path / "fake.nc"
    fake.write_bytes(content)
    with pytest.raises(InputDataError) as caught:
        open_source(fake, engine)  # type: ignore[arg-type]
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_a_directory_is_zarr_only_with_zarr_metadata(tmp_path: Path) -> None:
    small().to_zarr(tmp_path / "v2", zarr_format=2)
    assert detect_format(tmp_path / "v2") == "zarr"
    (tmp_path / "store.zarr").mkdir()
    with pytest.raises(InputDataError, match=r"store\.zarr: is a directory without Zarr metadata"):
        detect_format(tmp_path / "store.zarr")


def write_grib(path: Path, values: np.ndarray, run_hour: int = 0, mode: str = "wb") -> Path:
    """A forecast GRIB2 like MeteoNet's: one run (2020-01-01, `run_hour` UTC), one message per lead time in hours.

    `mode="ab"` appends the run to an existing file (several runs in one file).
    """
    eccodes = pytest.importorskip(
        "eccodes", reason="GRIB test needs the extra: pip install 'stride-data[grib]'"
    )
    with path.open(mode) as handle:
        for step, field in enumerate(values, start=1):
            message = eccodes.codes_grib_new_from_samples("regular_ll_sfc_grib2")
            keys = {
                "Ni": field.shape[1],
                "Nj": field.shape[0],
                "latitudeOfFirstGridPointInDegrees": 52.0,
                "longitudeOfFirstGridPointInDegrees": 0.0,
                "latitudeOfLastGridPointInDegrees": 52.0 - 0.25 * (field.shape[0] - 1),
                "longitudeOfLastGridPointInDegrees": 0.25 * (field.shape[1] - 1),
                "iDirectionIncrementInDegrees": 0.25,
                "jDirectionIncrementInDegrees": 0.25,
                "dataDate": 20200101,
                "dataTime": run_hour * 100,
                "shortName": "2t",
                "step": step,
            }
            for key, value in keys.items():
                eccodes.codes_set(message, key, value)
            eccodes.codes_set_values(message, field.astype(np.float64).ravel())
            eccodes.codes_write(message, handle)
            eccodes.codes_release(message)
    return path


def test_grib_forecast_reads_on_its_valid_times(tmp_path: Path) -> None:
    pytest.importorskip("cfgrib", reason="GRIB test needs the extra: pip install 'stride-data[grib]'")
    values = 280 + np.arange(3 * 4 * 8, dtype=np.float64).reshape(3, 4, 8) / 8
    grib = write_grib(tmp_path / "forecast.dat", values)  # the extension says nothing
    dataset, _ = open_source(grib)
    assert list(dataset["t2m"].dims) == ["time", "latitude", "longitude"]
    assert dataset["t2m"].attrs["units"] == "K"
    assert [str(t) for t in dataset["time"].values.astype("datetime64[h]")] == [
        "2020-01-01T01",
        "2020-01-01T02",
        "2020-01-01T03",
    ]
    # GRIB2 simple packing keeps these values to well under 1e-3 K.
    np.testing.assert_allclose(dataset["t2m"].values, values, atol=1e-3)
    assert not list(tmp_path.glob("*.idx")), "cfgrib must not write an index beside the source"


def test_grib_with_several_runs_takes_the_freshest_forecast_of_each_valid_time(tmp_path: Path) -> None:
    pytest.importorskip("cfgrib", reason="GRIB test needs the extra: pip install 'stride-data[grib]'")
    # Run 00 UTC (values 1xx) and run 03 UTC (values 2xx), leads 1-6 h: valid times 01-06 and 04-09 overlap.
    lead = np.arange(1, 7, dtype=np.float64)[:, None, None] * np.ones((1, 4, 8))
    grib = write_grib(tmp_path / "runs.grib2", 100 + lead, run_hour=0)
    write_grib(grib, 200 + lead, run_hour=3, mode="ab")

    dataset, _ = open_source(grib)
    hours = dataset["time"].values.astype("datetime64[h]").astype(int) % 24
    assert hours.tolist() == [1, 2, 3, 4, 5, 6, 7, 8, 9]
    # 01-03 only run 00 has; from 04 on run 03 is fresher (lead 1-6 h rather than 4-6 h).
    expected = [101, 102, 103, 201, 202, 203, 204, 205, 206]
    np.testing.assert_allclose(dataset["t2m"].values[:, 0, 0], expected, atol=1e-3)
    assert dataset["lead_hours"].values.tolist() == [1, 2, 3, 1, 2, 3, 4, 5, 6]

    # Skipping the first 2 h of each run (spin-up): 01 is gone, 04 comes from run 00 at lead 4 h.
    skipped, _ = open_source(grib, min_lead_hours=2)
    np.testing.assert_allclose(
        skipped["t2m"].values[:, 0, 0], [102, 103, 104, 202, 203, 204, 205, 206], atol=1e-3
    )
    with pytest.raises(
        InputDataError, match=r"runs\.grib2: no forecast field with a lead time of at least 7 h"
    ):
        open_source(grib, min_lead_hours=7)


def test_grib_without_the_extra_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    grib = tmp_path / "lr.grib2"
    grib.write_bytes(b"GRIB" + bytes(60))
    monkeypatch.setattr(formats, "_installed", lambda engine: engine != "cfgrib")
    with pytest.raises(InputDataError) as caught:
        open_source(grib)
    assert str(caught.value) == (
        f"{grib}: is a GRIB file; reading GRIB needs the optional extra: pip install 'stride-data[grib]'"
    )


def test_build_from_a_grib_source(tmp_path: Path) -> None:
    """The whole build on a GRIB source: HR target t2m coarsened x2 to LR."""
    from stride_contracts import DatasetManifest
    from stride_core.artifacts import read_zarr_manifest
    from stride_data.cli import main

    pytest.importorskip("cfgrib", reason="GRIB test needs the extra: pip install 'stride-data[grib]'")
    values = 280 + np.random.default_rng(0).standard_normal((3, 4, 8))
    grib = write_grib(tmp_path / "era.grib", values)
    config = tmp_path / "data.yaml"
    config.write_text(
        f"source: {{path: {grib}}}\ntarget: [t2m]\ndynamic: [t2m]\ncoarsen: {{factor: 2}}\n"
        "splits:\n  train: {start: 2020-01-01T00:00, end: 2020-01-01T03:00}\n"
    )
    assert main(["build", "--config", str(config), "--out", str(tmp_path / "dataset.zarr")]) == 0
    manifest = read_zarr_manifest(tmp_path / "dataset.zarr", DatasetManifest)
    assert manifest.n_times == 3 and manifest.grid.lr_shape == (2, 4)
    stored = xr.open_zarr(tmp_path / "dataset.zarr")["target"].values[:, 0]
    np.testing.assert_allclose(stored, values, atol=1e-3)


def test_build_from_several_grib_runs_with_a_spin_up_skipped(tmp_path: Path) -> None:
    """source.min_lead_hours reaches the reader: the build keeps, per valid time, the freshest run past 1 h."""
    from stride_data.cli import main

    pytest.importorskip("cfgrib", reason="GRIB test needs the extra: pip install 'stride-data[grib]'")
    lead = np.arange(1, 4, dtype=np.float64)[:, None, None] * np.ones((1, 4, 8))
    grib = write_grib(tmp_path / "runs.grib", 280 + lead, run_hour=0)
    write_grib(grib, 290 + lead, run_hour=1, mode="ab")
    config = tmp_path / "data.yaml"
    config.write_text(
        f"source: {{path: {grib}, min_lead_hours: 2}}\ntarget: [t2m]\ndynamic: [t2m]\ncoarsen: {{factor: 2}}\n"
        "splits:\n  train: {start: 2020-01-01T00:00, end: 2020-01-01T04:00}\n"
    )
    assert main(["build", "--config", str(config), "--out", str(tmp_path / "dataset.zarr")]) == 0
    stored = xr.open_zarr(tmp_path / "dataset.zarr")["target"].values[:, 0, 0, 0]
    # Valid 02: run 00 lead 2; 03: run 01 lead 2 (fresher than run 00 lead 3); 04: run 01 lead 3.
    np.testing.assert_allclose(stored, [282, 292, 293], atol=1e-3)
