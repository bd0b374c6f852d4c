from pathlib import Path

import dask.array as da
import numpy as np
import pytest
import xarray as xr

from stride_contracts import StatsManifest, StatsRow
from stride_core.artifacts import read_parquet_artifact
from stride_core.testing import write_synthetic_dataset
from stride_stats.cli import main
from stride_stats.compute import variable_stats


def test_stats_match_numpy_with_nans() -> None:
    rng = np.random.default_rng(0)
    values = rng.gamma(0.5, 2.0, size=(40, 16, 16))
    values[rng.random(values.shape) < 0.3] = np.nan
    stats = variable_stats(da.from_array(values, chunks=(7, 16, 16)), log_eps=0.01, bins=20000)
    valid = values[np.isfinite(values)]
    assert stats["count"] == valid.size
    assert stats["valid_fraction"] == pytest.approx(valid.size / values.size)
    assert stats["mean"] == pytest.approx(valid.mean(), rel=1e-9)
    assert stats["std"] == pytest.approx(valid.std(), rel=1e-6)
    assert (stats["min"], stats["max"]) == (valid.min(), valid.max())
    bin_width = (valid.max() - valid.min()) / 20000
    for name, level in (("q05", 0.05), ("q50", 0.5), ("q99", 0.99)):
        assert abs(stats[name] - np.quantile(valid, level)) < 2 * bin_width
    assert stats["log_mean"] == pytest.approx(np.log(valid + 0.01).mean(), rel=1e-9)


def test_negative_values_have_no_log_stats() -> None:
    stats = variable_stats(da.from_array(np.array([-1.0, 0.0, 2.0])), log_eps=0.01, bins=100)
    assert stats["log_mean"] is None


def test_cli_writes_contract_parquet(tmp_path: Path) -> None:
    write_synthetic_dataset(tmp_path / "dataset.zarr", nan_fraction=0.2)
    assert main(["--dataset", str(tmp_path / "dataset.zarr"), "--out", str(tmp_path / "stats.parquet")]) == 0
    table, manifest = read_parquet_artifact(tmp_path / "stats.parquet", StatsManifest, StatsRow)
    assert manifest.n_times == 24 and manifest.inputs[0].role == "dataset"
    assert list(table["role"]) == ["target", "dynamic", "static", "static"]
    target = xr.open_zarr(tmp_path / "dataset.zarr")["target"].values[:24]
    row = table.iloc[0]
    assert row["valid_fraction"] == pytest.approx(np.isfinite(target).mean())
    assert row["mean"] == pytest.approx(np.nanmean(target), rel=1e-6)


def test_on_a_local_dask_cluster(tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed")
    write_synthetic_dataset(tmp_path / "dataset.zarr")
    with distributed.LocalCluster(n_workers=1, processes=False, dashboard_address=None) as cluster:
        code = main(
            [
                "--dataset",
                str(tmp_path / "dataset.zarr"),
                "--out",
                str(tmp_path / "s.parquet"),
                "--set",
                f"scheduler={cluster.scheduler_address}",
            ]
        )
    assert code == 0
    assert (tmp_path / "s.parquet").is_file()
