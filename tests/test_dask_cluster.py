"""stride-stats on a real Dask cluster: a `dask scheduler` and two `dask worker` processes on 127.0.0.1.

The dataset is the real ERA5-UK store built by stride-data; the table computed on the cluster must equal the
one computed on local threads (the partials merge in a fixed tree, so they agree to float rounding), and
both must agree with numpy on the values read back from the store.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import pytest
import xarray as xr
from conftest import DATA, run_cli

from stride_contracts import StatsManifest, StatsRow
from stride_contracts.dataset import SPLIT_CODES
from stride_contracts.stats import QUANTILE_LEVELS
from stride_core.artifacts import read_parquet_artifact
from stride_stats.compute import QUANTILE_COLUMNS
from stride_stats.loopback import loopback_cluster

pytest.importorskip("distributed")
ERA5 = DATA / "era5_uk_t2m_2019-03.nc"
pytestmark = pytest.mark.skipif(not ERA5.is_file(), reason=f"real ERA5 file missing: {ERA5}")


@pytest.fixture(scope="module")
def era5_store(tmp_path_factory: pytest.TempPathFactory, cli_env: dict[str, str]) -> Path:
    out = tmp_path_factory.mktemp("era5")
    command = ["stride-data", "build", "--config", "configs/era5_uk.yaml", "--out", f"{out}/dataset.zarr"]
    completed = run_cli(command, cli_env)
    assert completed.returncode == 0, completed.stderr[-3000:]
    return out / "dataset.zarr"


def stats(store: Path, out: Path, env: dict[str, str], *extra: str) -> object:
    completed = run_cli(["stride-stats", "--dataset", str(store), "--out", str(out), *extra], env)
    assert completed.returncode == 0, completed.stderr[-3000:]
    table, _ = read_parquet_artifact(out, StatsManifest, StatsRow)
    return table


def test_cluster_table_equals_local_threads_and_numpy(
    era5_store: Path, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    local = stats(era5_store, tmp_path / "local.parquet", cli_env, "--set", "task_mb=0.5")
    started: list[int] = []
    with loopback_cluster(workers=2, threads=1, log_dir=tmp_path) as cluster:
        started = cluster.pids
        assert cluster.address.startswith("tcp://127.0.0.1:")
        assert len(started) == 3 and all(psutil.pid_exists(pid) for pid in started)
        remote = stats(
            era5_store,
            tmp_path / "cluster.parquet",
            cli_env,
            "--set",
            f"scheduler={cluster.address}",
            "--set",
            "task_mb=0.5",  # many tasks, so both workers take part
        )
        workers_log = "".join((tmp_path / f"worker-{i}.log").read_text() for i in range(2))
    # Every process the cluster started is gone (zombies reaped by the context manager's wait).
    assert not [pid for pid in started if psutil.pid_exists(pid)]
    assert "Starting established connection" in workers_log or "Registered to" in workers_log
    # Same tasks, same merge tree: equal up to the last bits that SIMD sums vary with memory alignment.
    pd.testing.assert_frame_equal(remote, local, check_exact=False, rtol=1e-13)  # type: ignore[arg-type]

    with xr.open_zarr(era5_store) as dataset:
        split = dataset["split"].values
        target = dataset["target"].values[split == SPLIT_CODES["train"], 0].astype(np.float64)
    valid = target[np.isfinite(target)]
    row = local.set_index(["role", "variable"]).loc[("target", "t2m")]  # type: ignore[attr-defined]
    assert row["count"] == valid.size
    assert row["mean"] == pytest.approx(valid.mean(), rel=1e-12)
    assert row["std"] == pytest.approx(valid.std(), rel=1e-10)
    # log is taken in float32 for float32 data (stride_stats.compute._Transforms), summed in float64.
    assert row["log_std"] == pytest.approx(np.log(valid + 0.01).std(), rel=1e-6)
    width = (valid.max() - valid.min()) / 20000  # histogram_bins' default over the value range
    for column, level in zip(QUANTILE_COLUMNS, QUANTILE_LEVELS, strict=True):
        assert abs(row[column] - np.quantile(valid, level)) <= width, column


def test_cluster_processes_stop_when_the_body_fails(tmp_path: Path) -> None:
    started: list[int] = []
    with pytest.raises(RuntimeError, match="boom"), loopback_cluster(workers=1, log_dir=tmp_path) as cluster:
        started = cluster.pids
        raise RuntimeError("boom")
    assert len(started) == 2 and not [pid for pid in started if psutil.pid_exists(pid)]


def test_stats_without_a_scheduler_at_the_address_fails_in_one_line(
    era5_store: Path, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    port = _free_port()
    env = {**cli_env, "DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "3s"}
    completed = run_cli(
        [
            "stride-stats",
            "--dataset",
            str(era5_store),
            "--out",
            str(tmp_path / "s.parquet"),
            "--set",
            f"scheduler=tcp://127.0.0.1:{port}",
        ],
        env,
    )
    assert completed.returncode == 2, completed.stderr[-2000:]
    assert f"tcp://127.0.0.1:{port}" in completed.stderr and "Traceback" not in completed.stderr


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
