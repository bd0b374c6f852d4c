"""`stride-generate export --format netcdf`: the CF view of a samples store, read back with xarray's CF decoder
and checked with the IOOS compliance-checker's CF-1.8 suite.

Why that checker: it runs offline (it ships the CF standard-name table, and cf-units' wheels bundle UDUNITS-2),
so the test needs neither the network nor a system library; `cfchecker` fetches the table from the web.
"""

from datetime import UTC, datetime
from pathlib import Path

import cftime
import numpy as np
import pytest
import xarray as xr
from compliance_checker.base import BaseCheck
from compliance_checker.runner import CheckSuite

from stride_contracts import ProducerRef, SamplerSettings, SamplesManifest
from stride_contracts.checkpoint import TransformSet
from stride_contracts.dataset import GridInfo, VariableRef
from stride_generate.cli import main
from stride_generate.export import samples_to_cf


def cf_findings(path: Path, standard: str, weight: int = BaseCheck.HIGH) -> list[str]:
    """The compliance-checker's failed checks of at least `weight` for `standard` (e.g. 'cf:1.8')."""
    suite = CheckSuite()
    suite.load_all_available_checkers()
    results, errors = suite.run_all(suite.load_dataset(str(path)), [standard], skip_checks=[])[standard]
    assert not errors, errors  # a check that crashed is no pass
    failed: list[str] = []
    for result in results:
        scored, out_of = result.value if isinstance(result.value, tuple) else (int(result.value), 1)
        if result.weight >= weight and scored < out_of:
            failed.extend(f"{result.name}: {msg}" for msg in result.msgs)
    return failed


def test_the_cf_check_finds_a_broken_file(tmp_path: Path) -> None:
    """The checker is live: units UDUNITS cannot parse and an unknown standard name are high-priority findings."""
    xr.Dataset(
        {"pr": (("y",), np.zeros(3, np.float32), {"units": "bogus", "standard_name": "not_a_name"})},
        attrs={"Conventions": "CF-1.8"},
    ).to_netcdf(tmp_path / "bad.nc", engine="h5netcdf")
    findings = "\n".join(cf_findings(tmp_path / "bad.nc", "cf:1.8"))
    assert '"bogus" are not recognized by UDUNITS' in findings and "not_a_name" in findings


@pytest.mark.parametrize("grid", ["projected", "latlon"])
def test_export_keeps_a_360_day_calendar_and_the_grid_mapping(tmp_path: Path, grid: str) -> None:
    times = [cftime.Datetime360Day(2050, 2, day) for day in (29, 30)]  # dates only that calendar has
    members = np.arange(2 * 3 * 1 * 4 * 8, dtype=np.float32).reshape(2, 3, 1, 4, 8)
    store = xr.Dataset(
        {
            "members": (("time", "member", "var", "y", "x"), members),
            "mean": (("time", "var", "y", "x"), members.mean(axis=1)),
            "seeds": (("time", "member"), np.arange(6, dtype=np.int64).reshape(2, 3) + 2**62),
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
            kind=grid,
            crs="EPSG:3035" if grid == "projected" else None,
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
    if grid == "latlon":
        store = store.drop_vars(["x", "y"])
    samples_to_cf(store, manifest, tmp_path / "s.zarr").to_netcdf(tmp_path / "p.nc", engine="h5netcdf")
    coder = xr.coders.CFDatetimeCoder(use_cftime=True)
    with xr.open_dataset(tmp_path / "p.nc", engine="h5netcdf", decode_times=coder) as nc:
        assert list(nc["time"].values) == times
        assert nc["time"].encoding["calendar"] == "360_day"
        assert nc["pr"].encoding["coordinates"] == "lat lon"
        assert [int(seed) for seed in nc["seeds"].values.ravel()] == store["seeds"].values.ravel().tolist()
        if grid == "projected":
            assert nc["pr"].attrs["grid_mapping"] == "crs"
            assert nc["crs"].attrs["grid_mapping_name"] == "lambert_azimuthal_equal_area"
            assert nc["x"].attrs["standard_name"] == "projection_x_coordinate"
        else:
            assert "grid_mapping" not in nc["pr"].attrs and "crs" not in nc.variables
    assert cf_findings(tmp_path / "p.nc", "cf:1.8") == []


def test_export_of_a_missing_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", "--samples", str(tmp_path / "none.zarr"), "--out", str(tmp_path / "x.nc")]) == 2
    assert "none.zarr: not found" in capsys.readouterr().err
    assert not (tmp_path / "x.nc").exists()
