from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
import zarr

from stride_contracts import DatasetManifest
from stride_core.artifacts import read_zarr_manifest
from stride_data.cli import main

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


def build(tmp_path: Path, source: Path, *extra: str) -> int:
    config = tmp_path / "data.yaml"
    config.write_text(CONFIG.format(path=source))
    return main(["build", "--config", str(config), "--out", str(tmp_path / "dataset.zarr"), *extra])


def test_build_crops_coarsens_and_labels_splits(tmp_path: Path) -> None:
    source = write_source(tmp_path / "src.nc")
    assert build(tmp_path, source) == 0
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
        ({"units": "degC"}, [], "has units 'degC', the registry expects 'K'"),
        ({"nan_everywhere": True}, [], "entirely NaN"),
        ({}, ["--set", "target=[precip]"], "has no variable 'precip'"),
        (
            {},
            ["--set", "splits.test.start=2021-01-01", "--set", "splits.test.end=2021-01-02"],
            "selects no time",
        ),
        ({}, ["--set", "splits.test.start=2020-01-01T05:00"], "overlap"),
    ],
)
def test_bad_sources_give_one_line_errors(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    kwargs: dict[str, object],
    extra: list[str],
    message: str,
) -> None:
    source = write_source(tmp_path / "src.nc", **kwargs)  # type: ignore[arg-type]
    assert build(tmp_path, source, *extra) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err
    assert not (tmp_path / "dataset.zarr").exists()


def test_not_a_netcdf_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fake = tmp_path / "fake.nc"
    fake.write_text("this is not a NetCDF file")
    assert build(tmp_path, fake) == 2
    assert "cannot be opened with engine 'h5netcdf'" in capsys.readouterr().err
