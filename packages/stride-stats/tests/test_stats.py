from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from scipy import optimize
from scipy.stats import boxcox_normmax

from stride_contracts import StatsManifest, StatsRow
from stride_core.artifacts import read_parquet_artifact
from stride_core.testing import write_synthetic_dataset
from stride_core.transforms import boxcox, inv_boxcox
from stride_stats.boxcox import fit_boxcox_lambda
from stride_stats.cli import main
from stride_stats.compute import _Transforms, run_pilot, variable_stats
from stride_stats.sources import ArraySource


def test_stats_match_numpy_with_nans() -> None:
    rng = np.random.default_rng(0)
    values = rng.gamma(0.5, 2.0, size=(40, 16, 16))
    values[rng.random(values.shape) < 0.3] = np.nan
    stats = variable_stats(values, log_eps=0.01, bins=20000, task_values=7 * 16 * 16)
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
    stats = variable_stats(np.array([-1.0, 0.0, 2.0]), log_eps=0.01, bins=100)
    for column in ("log_mean", "log_eps", "boxcox_lambda", "boxcox_shift", "boxcox_mean", "sqrt_std"):
        assert stats[column] is None
    StatsRow(role="target", variable="t", units="K", **stats)


def test_boxcox_lambda_recovers_the_generating_value() -> None:
    # x is the inverse Box-Cox of a normal sample, so lambda = 0.25 makes it exactly normal again.
    lmbda, shift = 0.25, 0.01
    rng = np.random.default_rng(3)
    values = inv_boxcox(rng.normal(2.0, 0.5, size=(50, 40, 100)), lmbda) - shift
    values[rng.random(values.shape) < 0.1] = np.nan
    stats = variable_stats(
        values,
        task_values=7 * 40 * 100,
        log_eps=0.01,
        bins=1000,
        boxcox_shift=shift,
        max_samples=50_000,
    )
    assert stats["boxcox_lambda"] == pytest.approx(lmbda, abs=0.03)
    assert stats["boxcox_shift"] == shift
    valid = values[np.isfinite(values)]
    transformed = boxcox(valid + shift, stats["boxcox_lambda"])
    assert stats["boxcox_mean"] == pytest.approx(transformed.mean(), rel=1e-9)
    assert stats["boxcox_std"] == pytest.approx(transformed.std(), rel=1e-9)
    assert stats["sqrt_mean"] == pytest.approx(np.sqrt(valid).mean(), rel=1e-9)
    assert stats["sqrt_std"] == pytest.approx(np.sqrt(valid).std(), rel=1e-9)
    assert stats["wet_fraction"] is None and stats["wet_threshold"] is None


@pytest.mark.parametrize("lmbda", [0.0, 0.01, 0.3, 1.7])  # log; float64 power; float32 power (two)
def test_float32_transform_moments_match_float64(lmbda: float) -> None:
    # float32 values as stride-data stores them: log and exp taken in float32, summed in float64; the
    # reference takes every transform of the same values in float64.
    rng = np.random.default_rng(5)
    values = np.concatenate([rng.gamma(0.6, 3.0, 300_000), np.zeros(5000)]).astype(np.float32)
    transforms = _Transforms(log_eps=0.01, boxcox_shift=0.02, boxcox_lambda=lmbda, centre=1.7)
    moments = transforms.moments(values, float(values.max()))
    x = values.astype(np.float64)
    for name, reference in (
        ("log", np.log(x + 0.01)),
        ("sqrt", np.sqrt(x)),
        ("boxcox", boxcox(x + 0.02, lmbda)),
    ):
        assert moments[name].n == x.size
        assert moments[name].mean == pytest.approx(reference.mean(), rel=1e-6, abs=1e-9), name
        assert moments[name].std == pytest.approx(reference.std(), rel=1e-6), name


@pytest.mark.parametrize("kind", ["gamma", "t2m", "rain"])
def test_boxcox_fit_matches_scipy(kind: str) -> None:
    rng = np.random.default_rng(11)
    sample = {
        "gamma": rng.gamma(0.8, 2.0, 50_000),
        "t2m": rng.normal(280.0, 8.0, 50_000) + rng.gamma(2.0, 2.0, 50_000),
        "rain": np.where(rng.random(50_000) < 0.6, 0.0, rng.gamma(0.7, 2.0, 50_000)),
    }[kind]

    def bounded(objective: Callable[[float], float]) -> optimize.OptimizeResult:
        return optimize.minimize_scalar(
            objective, bounds=(0.0, 2.0), method="bounded", options={"xatol": 1e-6}
        )

    expected = boxcox_normmax(sample + 0.01, method="mle", optimizer=bounded)
    assert fit_boxcox_lambda(sample, 0.01) == pytest.approx(expected, abs=1e-4)


def test_boxcox_fit_edge_cases() -> None:
    assert fit_boxcox_lambda(np.zeros(100), 0.01) == 1.0
    assert fit_boxcox_lambda(np.array([]), 0.01) == 1.0
    rng = np.random.default_rng(0)
    rain = np.where(rng.random(20_000) < 0.6, 0.0, rng.gamma(0.7, 2.0, 20_000))
    assert fit_boxcox_lambda(rain, 0.01) == pytest.approx(0.0, abs=1e-5)  # optimum < 0, bounded at log
    assert 0.0 <= fit_boxcox_lambda(rng.normal(280.0, 2.0, 5_000), 0.01) <= 2.0
    stats = variable_stats(np.zeros((4, 5)), log_eps=0.01, bins=100, wet_threshold=0.1)
    assert stats["boxcox_lambda"] == 1.0 and stats["boxcox_std"] == pytest.approx(0.0, abs=1e-12)
    assert stats["wet_fraction"] == 0.0


def test_wet_fraction_is_exact() -> None:
    values = np.array([[0.0, 0.05, 0.1], [0.2, np.nan, 3.0]])
    stats = variable_stats(values, log_eps=0.01, bins=100, wet_threshold=0.1, task_values=1)
    assert stats["wet_fraction"] == 2 / 5  # 0.2 and 3.0 of 5 valid values; 0.1 itself is not above
    assert stats["wet_threshold"] == 0.1
    assert variable_stats(values, log_eps=0.01, bins=100)["wet_fraction"] is None


def test_pilot_sample_is_bounded_reproducible_and_drawn_from_the_data() -> None:
    values = np.random.default_rng(1).random((100, 50, 40))
    source = ArraySource(values)
    sample = run_pilot(source, max_samples=5_000, seed=7, task_values=9 * 2000).sample
    # The pilot reads every row here (100 < PILOT_ROWS): each value kept with probability 5000/200000.
    assert 4_700 < sample.size <= 5_000
    assert np.isin(sample, values).all() and np.unique(sample).size == sample.size
    np.testing.assert_array_equal(
        run_pilot(source, max_samples=5_000, seed=7, task_values=9 * 2000).sample, sample
    )
    assert not np.array_equal(
        run_pilot(source, max_samples=5_000, seed=8, task_values=9 * 2000).sample, sample
    )
    values[:, :10] = np.nan  # a fifth missing: the subsample keeps about a fifth fewer values
    gappy = run_pilot(ArraySource(values), max_samples=5_000, seed=7, task_values=9 * 2000).sample
    assert np.isfinite(gappy).all() and 3_700 < gappy.size < 4_300
    small = run_pilot(ArraySource(values[:2]), max_samples=10**6, seed=0, task_values=2000).sample
    np.testing.assert_array_equal(np.sort(small), np.sort(values[:2][np.isfinite(values[:2])]))


def test_pilot_of_many_rows_reads_a_spread_subset() -> None:
    # 2000 rows of 100 values, 1000 samples wanted: the pilot reads max(256, 4 * 1000 / 100) = 256 rows.
    values = np.arange(200_000, dtype=np.float64).reshape(2000, 100)
    sample = run_pilot(ArraySource(values), max_samples=1_000, seed=0, task_values=10_000).sample
    rows = np.unique(sample // 100).astype(int)
    assert 0.9 * 1000 < sample.size <= 1000
    assert rows.min() < 100 and rows.max() > 1900 and rows.size <= 256  # spread over all rows, few of them


def test_stats_fit_lambda_to_the_pilot_sample() -> None:
    values = np.random.default_rng(2).gamma(2.0, 1.0, (60, 30, 30))
    stats = variable_stats(
        values, log_eps=0.01, bins=100, boxcox_shift=0.05, max_samples=3_000, seed=4, task_values=8 * 900
    )
    sample = run_pilot(ArraySource(values), max_samples=3_000, seed=4, task_values=8 * 900).sample
    assert stats["boxcox_lambda"] == fit_boxcox_lambda(sample, 0.05)


def test_stats_row_needs_complete_groups() -> None:
    stats = variable_stats(np.array([0.0, 1.0, 2.0]), log_eps=0.01, bins=100)
    StatsRow(role="target", variable="p", units="mm h-1", **stats)
    with pytest.raises(
        ValueError, match="boxcox_lambda, boxcox_shift, boxcox_mean, boxcox_std are set together"
    ):
        StatsRow(role="target", variable="p", units="mm h-1", **{**stats, "boxcox_std": None})
    with pytest.raises(ValueError, match="wet_threshold missing"):
        StatsRow(role="target", variable="p", units="mm h-1", **{**stats, "wet_fraction": 0.5})


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
    assert table["boxcox_lambda"].notna().all()  # t2m in K, orography and the land-sea mask are all >= 0
    assert table["wet_fraction"].isna().all()  # none of them is positive-definite in the shipped registry


def test_cli_wet_fraction_for_registry_positive_definite(tmp_path: Path) -> None:
    write_synthetic_dataset(tmp_path / "dataset.zarr")
    (tmp_path / "variables.yaml").write_text("t2m:\n  is_positive_definite: true\n")
    code = main(
        [
            "--dataset",
            str(tmp_path / "dataset.zarr"),
            "--out",
            str(tmp_path / "stats.parquet"),
            "--set",
            f"variables_file={tmp_path / 'variables.yaml'}",
            "--set",
            "wet_threshold=281",
        ]
    )
    assert code == 0
    table, _ = read_parquet_artifact(tmp_path / "stats.parquet", StatsManifest, StatsRow)
    target = xr.open_zarr(tmp_path / "dataset.zarr")["target"].values[:24]
    row = table.set_index(["role", "variable"]).loc[("target", "t2m")]
    assert row["wet_fraction"] == pytest.approx((target > 281).mean()) and row["wet_threshold"] == 281


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
