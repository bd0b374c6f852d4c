import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
import zarr

from stride_contracts import DatasetManifest
from stride_core.artifacts import read_zarr_manifest

CONFIG = """\
source: {{path: {path}}}
target: [t2m]
dynamic: [t2m]
static: [orography, lsm]
coarsen: {{factor: 4}}
splits:
  train: {{start: 2020-01-01T00:00, end: 2020-01-01T11:00}}
  test: {{start: 2020-01-01T12:00, end: 2020-01-01T17:00}}
"""


def write_source(path: Path, units: str = "K", nan_everywhere: bool = False) -> Path:
    rng = np.random.default_rng(0)
    t2m = 280 + rng.normal(size=(20, 18, 26)).astype(np.float32)
    if nan_everywhere:
        t2m[:] = np.nan
    ds = xr.Dataset(
        {
            "t2m": (("time", "latitude", "longitude"), t2m, {"units": units}),
            "orography": (
                ("latitude", "longitude"),
                rng.uniform(0, 500, (18, 26)).astype(np.float32),
                {"units": "m"},
            ),
            "lsm": (
                ("latitude", "longitude"),
                rng.uniform(0, 1, (18, 26)).astype(np.float32),
                {"units": "1"},
            ),
        },
        coords={
            "time": pd.date_range("2020-01-01", periods=20, freq="h"),
            "latitude": np.linspace(58, 54, 18),
            "longitude": np.linspace(-10, -4, 26),
        },
    )
    ds.to_netcdf(path, engine="h5netcdf")
    return path


def test_build_crops_coarsens_and_labels_splits(
    build_from: Callable[[str], Callable[..., int]], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    build = build_from(CONFIG)
    source = write_source(tmp_path / "src.nc")
    logging.getLogger("stride-data").addHandler(caplog.handler)
    try:
        assert build(source) == 0
    finally:
        logging.getLogger("stride-data").removeHandler(caplog.handler)
    # 18 x 26 does not divide by 4 and no region is set: trimmed, saying which cells go and how to choose.
    assert (
        "cropping 18x26 to rows 0:16, cols 0:24 (factor 4); factor does not divide the grid: set region.box"
        in (caplog.text)
    )
    manifest = read_zarr_manifest(tmp_path / "dataset.zarr", DatasetManifest)
    assert manifest.grid.hr_shape == (16, 24) and manifest.grid.lr_shape == (4, 6)
    assert manifest.n_times == 18 and manifest.sources[0].sha256
    ds = xr.open_zarr(tmp_path / "dataset.zarr")
    assert ds["target"].shape == (18, 1, 16, 24) and ds["cond_dynamic"].shape == (18, 1, 4, 6)
    assert list(ds["static_var"].values) == ["orography", "lsm"]
    assert (ds["split"].values == 0).sum() == 12 and (ds["split"].values == 2).sum() == 6
    # The LR cell is the area-weighted mean of its 4x4 HR block.
    hr = ds["target"].values[0, 0, :4, :4].astype(np.float64)
    w = np.cos(np.deg2rad(ds["lat"].values[:4]))[:, None] * np.ones((1, 4))
    assert ds["cond_dynamic"].values[0, 0, 0, 0] == pytest.approx((hr * w).sum() / w.sum(), rel=1e-5)
    assert zarr.open_group(tmp_path / "dataset.zarr").attrs["stride"]["contract"] == "stride.dataset"


@pytest.mark.parametrize(
    ("kwargs", "extra", "message"),
    [
        ({"units": "m"}, [], "has units 'm', the registry expects 'K' for 't2m' and no unambiguous"),
        ({"nan_everywhere": True}, [], "entirely NaN"),
        ({}, ["--set", "target=[precip]"], "has no variable 'precip'"),
        ({}, ["--set", "static=[orography, lsm_typo]"], "static: unknown variable 'lsm_typo' (known: "),
        (
            {},
            ["--set", "splits.test.start=2021-01-01", "--set", "splits.test.end=2021-01-02"],
            "selects no time",
        ),
        ({}, ["--set", "splits.test.start=2020-01-01T05:00"], "overlap"),
        (
            {},
            ["--set", "coarsen.factor=64"],
            "smaller than coarsen.factor 64, so no LR cell fits; choose coarsen.factor <= 18",
        ),
    ],
)
def test_bad_sources_give_one_line_errors(
    build_from: Callable[[str], Callable[..., int]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    kwargs: dict[str, object],
    extra: list[str],
    message: str,
) -> None:
    build = build_from(CONFIG)
    source = write_source(tmp_path / "src.nc", **kwargs)  # type: ignore[arg-type]
    assert build(source, *extra) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err
    assert not (tmp_path / "dataset.zarr").exists()


def test_not_a_netcdf_file(
    build_from: Callable[[str], Callable[..., int]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    build = build_from(CONFIG)
    fake = tmp_path / "fake.nc"
    fake.write_text("this is not a NetCDF file")
    assert build(fake) == 2
    err = capsys.readouterr().err.strip()
    assert f"{fake}: is not a NetCDF, GRIB or Zarr source (it starts with b'this is not a Ne')" in err
    assert "\n" not in err


def test_several_files_merge_along_time_with_provenance(
    build_from: Callable[[str], Callable[..., int]], tmp_path: Path
) -> None:
    build = build_from(CONFIG)
    whole = xr.open_dataset(write_source(tmp_path / "all.nc"), engine="h5netcdf").load()
    whole.isel(time=slice(0, 12)).to_netcdf(tmp_path / "a.nc", engine="h5netcdf")
    whole.isel(time=slice(12, 20)).to_netcdf(tmp_path / "b.nc", engine="h5netcdf")
    assert build([tmp_path / "b.nc", tmp_path / "a.nc"]) == 0
    manifest = read_zarr_manifest(tmp_path / "dataset.zarr", DatasetManifest)
    assert [Path(s.path).name for s in manifest.sources] == ["b.nc", "a.nc"]
    assert manifest.n_times == 18 and len({s.sha256 for s in manifest.sources}) == 2


def test_files_on_different_grids_do_not_merge(
    build_from: Callable[[str], Callable[..., int]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    build = build_from(CONFIG)
    whole = xr.open_dataset(write_source(tmp_path / "all.nc"), engine="h5netcdf").load()
    whole.isel(time=slice(0, 12)).to_netcdf(tmp_path / "a.nc", engine="h5netcdf")
    shifted = whole.isel(time=slice(12, 20)).assign_coords(latitude=whole["latitude"] + 0.5)
    shifted.to_netcdf(tmp_path / "b.nc", engine="h5netcdf")
    assert build([tmp_path / "a.nc", tmp_path / "b.nc"]) == 2
    assert "a.nc, b.nc: these files cannot be merged along time" in capsys.readouterr().err
    whole.isel(time=slice(10, 20)).to_netcdf(tmp_path / "c.nc", engine="h5netcdf")
    assert build([tmp_path / "a.nc", tmp_path / "c.nc"]) == 2
    assert "appear in more than one file" in capsys.readouterr().err


def test_files_of_different_variables_merge_side_by_side(
    build_from: Callable[[str], Callable[..., int]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One file per variable, as ERA5 is downloaded: t2m in two months-like pieces, invariants with one step."""
    build = build_from(CONFIG)
    whole = xr.open_dataset(write_source(tmp_path / "all.nc"), engine="h5netcdf").load()
    whole[["t2m"]].isel(time=slice(0, 12)).to_netcdf(tmp_path / "t2m_a.nc", engine="h5netcdf")
    whole[["t2m"]].isel(time=slice(12, 20)).to_netcdf(tmp_path / "t2m_b.nc", engine="h5netcdf")
    invariants = whole[["orography", "lsm"]].expand_dims(time=whole["time"].values[:1])
    invariants.to_netcdf(tmp_path / "invariants.nc", engine="h5netcdf")
    assert build([tmp_path / "t2m_b.nc", tmp_path / "invariants.nc", tmp_path / "t2m_a.nc"]) == 0
    merged = xr.open_zarr(tmp_path / "dataset.zarr").load()
    assert build(tmp_path / "all.nc", "--out", str(tmp_path / "whole.zarr")) == 0
    reference = xr.open_zarr(tmp_path / "whole.zarr").load()
    for name in ("target", "cond_dynamic", "cond_static"):
        np.testing.assert_array_equal(merged[name].values, reference[name].values)
    assert len(read_zarr_manifest(tmp_path / "dataset.zarr", DatasetManifest).sources) == 3

    # A variable given twice, or variables on different time steps, is a one-line error.
    whole[["t2m", "lsm"]].to_netcdf(tmp_path / "t2m_lsm.nc", engine="h5netcdf")
    assert (
        build([tmp_path / "t2m_lsm.nc", tmp_path / "invariants.nc"], "--out", str(tmp_path / "x.zarr")) == 2
    )
    assert "variable 'lsm' is in" in capsys.readouterr().err
    shifted = whole[["t2m"]].assign_coords(time=whole["time"].values + np.timedelta64(30, "m"))
    shifted = shifted.rename({"t2m": "u10"})
    shifted["u10"].attrs["units"] = "m s-1"
    shifted.to_netcdf(tmp_path / "u10.nc", engine="h5netcdf")
    assert build([tmp_path / "all.nc", tmp_path / "u10.nc"], "--out", str(tmp_path / "y.zarr")) == 2
    err = capsys.readouterr().err.strip()
    assert "files with different variables cannot be merged" in err and "\n" not in err


def test_repeated_time_stamps_are_refused_or_kept_first(
    build_from: Callable[[str], Callable[..., int]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write_source(tmp_path / "src.nc")
    with xr.open_dataset(source, engine="h5netcdf") as ds:
        doubled = xr.concat(
            [ds.isel(time=slice(0, 6)), ds.isel(time=[5]) + 100, ds.isel(time=slice(6, None))],
            "time",
            data_vars="all",  # xarray's current default, named: it warns that the default will change
        )
        doubled = doubled.assign(orography=ds["orography"], lsm=ds["lsm"]).load()
    doubled.to_netcdf(tmp_path / "doubled.nc", engine="h5netcdf")
    build = build_from(CONFIG)
    assert build(tmp_path / "doubled.nc") == 2
    err = capsys.readouterr().err.strip()
    assert (
        "1 repeated time stamp(s): 2020-01-01T05:00:00" in err and "source.duplicate_times: keep_first" in err
    )
    assert "\n" not in err and not (tmp_path / "dataset.zarr").exists()

    assert build(tmp_path / "doubled.nc", "--set", "source.duplicate_times=keep_first") == 0
    built = xr.open_zarr(tmp_path / "dataset.zarr", consolidated=False)
    assert built.sizes["time"] == 18 and pd.Index(built["time"].values).is_unique
    # The first field of the repeated hour is kept, not the one after it (+100 K).
    hour5 = built["target"].sel(time="2020-01-01T05:00").values
    with xr.open_dataset(source, engine="h5netcdf") as ds:
        assert float(np.nanmean(hour5)) == pytest.approx(float(ds["t2m"].isel(time=5).mean()), abs=1.0)
