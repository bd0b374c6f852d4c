"""`stride-generate export --format netcdf`: the CF view of a samples store, read back with xarray's CF decoder."""

from datetime import UTC, datetime
from pathlib import Path

import cftime
import numpy as np
import pytest
import xarray as xr

from stride_contracts import ProducerRef, SamplerSettings, SamplesManifest
from stride_contracts.checkpoint import TransformSet
from stride_contracts.dataset import GridInfo, VariableRef
from stride_generate.cli import main
from stride_generate.export import samples_to_cf


def test_export_keeps_a_360_day_calendar_and_the_grid_mapping(tmp_path: Path) -> None:
    times = [cftime.Datetime360Day(2050, 2, day) for day in (29, 30)]  # dates only that calendar has
    members = np.arange(2 * 3 * 1 * 4 * 8, dtype=np.float32).reshape(2, 3, 1, 4, 8)
    store = xr.Dataset(
        {
            "members": (("time", "member", "var", "y", "x"), members),
            "mean": (("time", "var", "y", "x"), members.mean(axis=1)),
            "seeds": (("time", "member"), np.zeros((2, 3), dtype=np.int64)),
        },
        coords={
            "time": times,
            "x": np.arange(8) * 1000.0,
            "y": np.arange(4) * 1000.0,
            "lat": (("y", "x"), np.full((4, 8), 52.0)),
            "lon": (("y", "x"), np.full((4, 8), 5.0)),
        },
    )
    manifest = SamplesManifest(
        producer=ProducerRef(tool="test", stride_version="0", created_utc=datetime.now(UTC)),
        target=[VariableRef(name="pr", units="mm day-1")],
        dynamic=[],
        static=[],
        grid=GridInfo(
            kind="projected",
            crs="EPSG:3035",
            hr_shape=(4, 8),
            lr_shape=(1, 2),
            factor=4,
            lat_descending=False,
        ),
        split="test",
        n_members=3,
        base_seed=0,
        sampler=SamplerSettings(),
        use_ema=True,
        model_kind="edm",
        checkpoint_step=1,
        transforms=TransformSet(target=[], dynamic=[], static=[]),
        has_target=False,
    )
    samples_to_cf(store, manifest, tmp_path / "s.zarr").to_netcdf(tmp_path / "p.nc", engine="h5netcdf")
    coder = xr.coders.CFDatetimeCoder(use_cftime=True)
    with xr.open_dataset(tmp_path / "p.nc", engine="h5netcdf", decode_times=coder) as nc:
        assert list(nc["time"].values) == times
        assert nc["time"].encoding["calendar"] == "360_day"
        assert nc["pr"].attrs["grid_mapping"] == "crs" and nc["pr"].encoding["coordinates"] == "lat lon"
        assert nc["crs"].attrs["grid_mapping_name"] == "lambert_azimuthal_equal_area"
        assert nc["x"].attrs["standard_name"] == "projection_x_coordinate"


def test_export_of_a_missing_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", "--samples", str(tmp_path / "none.zarr"), "--out", str(tmp_path / "x.nc")]) == 2
    assert "none.zarr: not found" in capsys.readouterr().err
    assert not (tmp_path / "x.nc").exists()
