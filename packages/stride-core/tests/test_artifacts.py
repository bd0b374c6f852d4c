import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
import zarr

from stride_contracts import DatasetManifest, StatsManifest, StatsRow
from stride_core.artifacts import (
    read_manifest_folder,
    read_parquet_artifact,
    read_zarr_manifest,
    write_parquet_artifact,
    write_zarr_artifact,
)
from stride_core.errors import ArtifactError

ROW = dict(
    role="target",
    variable="t2m",
    units="K",
    count=10,
    valid_fraction=1.0,
    mean=280.0,
    std=2.0,
    min=270.0,
    max=290.0,
    q01=271.0,
    q05=272.0,
    q25=278.0,
    q50=280.0,
    q75=282.0,
    q95=288.0,
    q99=289.0,
    log_mean=None,
    log_std=None,
    log_eps=None,
    boxcox_lambda=None,
    boxcox_shift=None,
    boxcox_mean=None,
    boxcox_std=None,
    sqrt_mean=None,
    sqrt_std=None,
    wet_fraction=None,
    wet_threshold=None,
)


def write_store(path: Path, manifest: StatsManifest) -> None:
    write_zarr_artifact(xr.Dataset({"a": (("x",), np.arange(3.0))}), manifest, path)


def test_zarr_round_trip_and_wrong_contract(tmp_path: Path, stats_manifest: StatsManifest) -> None:
    path = tmp_path / "store.zarr"
    write_store(path, stats_manifest)
    assert read_zarr_manifest(path, StatsManifest, ("a",)) == stats_manifest
    with pytest.raises(ArtifactError, match=r"is a 'stride\.stats' artifact, expected 'stride\.dataset'"):
        read_zarr_manifest(path, DatasetManifest)
    with pytest.raises(ArtifactError, match="missing array 'b'"):
        read_zarr_manifest(path, StatsManifest, ("b",))


def test_zarr_wrong_version_and_corrupt_store(tmp_path: Path, stats_manifest: StatsManifest) -> None:
    path = tmp_path / "store.zarr"
    write_store(path, stats_manifest)
    group = zarr.open_group(path, mode="r+")
    group.attrs["stride"] = {**group.attrs["stride"], "version": 99}
    with pytest.raises(ArtifactError, match="version 99 is not supported"):
        read_zarr_manifest(path, StatsManifest)
    (path / "zarr.json").write_text("{not json")
    with pytest.raises(ArtifactError, match="not a readable Zarr store"):
        read_zarr_manifest(path, StatsManifest)
    shutil.rmtree(path)
    with pytest.raises(ArtifactError, match="not found"):
        read_zarr_manifest(path, StatsManifest)


def test_parquet_round_trip_and_row_validation(tmp_path: Path, stats_manifest: StatsManifest) -> None:
    path = tmp_path / "stats.parquet"
    write_parquet_artifact(pd.DataFrame([ROW]), stats_manifest, path, StatsRow)
    table, manifest = read_parquet_artifact(path, StatsManifest, StatsRow)
    assert manifest == stats_manifest and table.loc[0, "mean"] == 280.0
    with pytest.raises(ArtifactError, match="row 0 field 'std'"):
        write_parquet_artifact(
            pd.DataFrame([{**ROW, "std": -1.0}]), stats_manifest, tmp_path / "x.parquet", StatsRow
        )
    assert not (tmp_path / "x.parquet").exists()
    path.write_bytes(b"PAR1garbage")
    with pytest.raises(ArtifactError, match="not a readable Parquet file"):
        read_parquet_artifact(path, StatsManifest, StatsRow)


def test_manifest_folder_errors(tmp_path: Path) -> None:
    folder = tmp_path / "checkpoint"
    folder.mkdir()
    with pytest.raises(ArtifactError, match=r"no manifest\.json"):
        read_manifest_folder(folder, StatsManifest)
    (folder / "manifest.json").write_text(json.dumps({"contract": "stride.stats", "version": 1}))
    with pytest.raises(ArtifactError, match="manifest field 'producer'"):
        read_manifest_folder(folder, StatsManifest)
