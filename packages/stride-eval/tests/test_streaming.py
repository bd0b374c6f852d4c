"""chunk_dates: the streamed scores equal the in-memory ones, with memory bounded by a chunk, not the store."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stride_contracts import METRIC_QUALIFIERS
from stride_eval.cli import main


def headline(path: Path) -> dict[tuple[str, str], float]:
    table = pd.read_parquet(path)
    top = table[table[list(METRIC_QUALIFIERS)].isna().all(axis=1)]
    return {(r.model, r.metric): r.value for r in top.itertuples()}


def test_streamed_scores_match_in_memory_and_memory_stays_bounded(
    tmp_path: Path, write_samples: Callable[..., Path]
) -> None:
    rng = np.random.default_rng(0)
    n_times, n_members, size = 32, 32, 96
    truth = rng.gamma(0.5, 1.0, size=(n_times, size, size)).astype(np.float32)
    truth[truth < 0.3] = 0
    truth[:, :10] = np.nan
    members = (
        np.nan_to_num(truth, nan=1.0)[:, None] * rng.lognormal(0, 0.4, size=(n_times, n_members, size, size))
    ).astype(np.float32)
    store = write_samples(
        tmp_path / "s.zarr", members, truth, variable="precip", units="mm h-1", chunk_dates=1
    )
    members_mb = members.nbytes / 2**20  # 36 MiB of members; a chunk of 1 date holds 1/32 of them
    families = "families=[probabilistic,deterministic,distributions]"
    whole, streamed = tmp_path / "whole.parquet", tmp_path / "streamed.parquet"
    assert main(["--samples", str(store), "--out", str(whole), "--set", families]) == 0
    tracemalloc.start()
    assert (
        main(["--samples", str(store), "--out", str(streamed), "--set", families, "--set", "chunk_dates=1"])
        == 0
    )
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    # numpy and zarr report their buffers to tracemalloc. The whole store's members alone are members_mb;
    # a chunk (read and decoded: about 4x its size) plus the truth held whole stays well below it.
    assert peak / 2**20 < 0.4 * members_mb, f"peak {peak / 2**20:.1f} MiB for {members_mb:.1f} MiB of members"

    a, b = headline(whole), headline(streamed)
    exact = [
        "crps",
        "spread_skill",
        "rank_flatness",
        "rmse_mean",
        "mae_mean",
        "bias_mean",
        "rmse_pmm",
        "mae_pmm",
        "wet_freq",
        "wet_freq_error",
        "wet_mean_intensity",
    ]
    for model in ("stride", "bicubic"):
        for metric in exact:
            if (model, metric) in a:
                assert b[(model, metric)] == pytest.approx(a[(model, metric)], rel=1e-6, abs=1e-9), (
                    model,
                    metric,
                )
        bin_width = float(np.nanmax(truth) - np.nanmin(truth)) / 2000
        assert b[(model, "wasserstein")] == pytest.approx(a[(model, "wasserstein")], abs=2 * bin_width)
        assert b[(model, "p99")] == pytest.approx(a[(model, "p99")], abs=2 * bin_width)
    assert ("stride", "spread_skill") in b and ("stride", "crps") in b


def test_dates_scale_spatial_and_temporal_stream_exactly(
    tmp_path: Path, write_samples: Callable[..., Path]
) -> None:
    # Chunks of 3 dates: lag-1 and lag-2 pairs straddle chunk boundaries; NaN truth on a strip and one
    # whole date, so spectra weights and pair counts differ by pixel and date.
    rng = np.random.default_rng(3)
    n_times, n_members, size = 10, 4, 32
    base = np.cumsum(rng.normal(size=(n_times, size, size)), axis=0)  # autocorrelated in time
    truth = (280 + base).astype(np.float32)
    truth[:, :5] = np.nan
    truth[6] = np.nan
    members = (
        np.nan_to_num(truth, nan=280.0)[:, None] + rng.normal(size=(n_times, n_members, size, size))
    ).astype(np.float32)
    store = write_samples(tmp_path / "s.zarr", members, truth, chunk_dates=1)
    families = "families=[dates,scale,spatial,temporal]"
    settings = ["--set", families, "--set", "lags=[1,2]", "--set", "pool_factors=[2,4]"]
    whole, streamed = tmp_path / "whole.parquet", tmp_path / "streamed.parquet"
    assert main(["--samples", str(store), "--out", str(whole), *settings]) == 0
    assert main(["--samples", str(store), "--out", str(streamed), *settings, "--set", "chunk_dates=3"]) == 0
    keys = ["model", "family", "metric", "date", "wavenumber", "scale", "lag"]
    a = pd.read_parquet(whole).set_index(keys)["value"].sort_index()
    b = pd.read_parquet(streamed).set_index(keys)["value"].sort_index()
    assert a.index.equals(b.index)
    for family in ("dates", "scale", "spatial", "temporal"):
        assert (a.index.get_level_values("family") == family).sum() > 0
    for metric in (
        "psd",
        "ralsd",
        "crps_pooled",
        "autocorrelation",
        "rmse_weighted",
        "correlation_weighted",
        "fss",
        "variogram",
    ):
        assert (a.index.get_level_values("metric") == metric).sum() > 0, metric
    np.testing.assert_allclose(b.to_numpy(), a.to_numpy(), rtol=1e-9, atol=1e-12)
    chosen = a.xs(("stride", "dates", "mae_mean"), level=("model", "family", "metric"))
    assert len(chosen) == 3  # top_dates = 3, from the whole truth (spread over the chunks)
    lag1 = a.xs(("truth", "temporal", "autocorrelation"), level=("model", "family", "metric"))
    assert float(lag1.iloc[0]) > 0.5  # a random walk in time: strongly autocorrelated at lag 1


def test_occurrence_streams(tmp_path: Path, write_samples: Callable[..., Path]) -> None:
    rng = np.random.default_rng(4)
    n_times, n_members, size = 8, 5, 32
    truth = rng.gamma(0.5, 1.0, size=(n_times, size, size)).astype(np.float32)
    truth[truth < 0.3] = 0
    truth[:, :6] = np.nan
    members = (
        np.nan_to_num(truth, nan=1.0)[:, None] * rng.lognormal(0, 0.4, (n_times, n_members, size, size))
    ).astype(np.float32)
    store = write_samples(tmp_path / "s.zarr", members, truth, variable="precip", units="mm h-1")
    whole, streamed = tmp_path / "whole.parquet", tmp_path / "streamed.parquet"
    settings = ["--set", "families=[occurrence]"]
    assert main(["--samples", str(store), "--out", str(whole), *settings]) == 0
    assert main(["--samples", str(store), "--out", str(streamed), *settings, "--set", "chunk_dates=3"]) == 0
    a, b = headline(whole), headline(streamed)
    assert set(a) == set(b) and ("stride", "p99") in a and ("truth", "wet_freq") in a
    bin_width = float(np.nanmax(truth) - np.nanmin(truth)) / 2000
    for key, value in a.items():
        if key[1].startswith("p99") and key[0] != "truth":
            assert b[key] == pytest.approx(value, abs=2 * bin_width), key
        else:
            assert b[key] == pytest.approx(value, rel=1e-12, abs=1e-12), key


def test_extremes_stream(tmp_path: Path, write_samples: Callable[..., Path]) -> None:
    # Weekly dates over three months: monthly block maxima, blocks straddling chunks of 3 dates.
    rng = np.random.default_rng(5)
    n_times, n_members, size = 13, 3, 24
    truth = rng.gamma(0.6, 1.5, size=(n_times, size, size)).astype(np.float32)
    truth[:, :4] = np.nan
    members = (
        np.nan_to_num(truth, nan=1.0)[:, None] * rng.lognormal(0, 0.5, (n_times, n_members, size, size))
    ).astype(np.float32)
    store = write_samples(tmp_path / "s.zarr", members, truth, variable="precip", units="mm h-1", freq="7D")
    whole, streamed = tmp_path / "whole.parquet", tmp_path / "streamed.parquet"
    settings = ["--set", "families=[extremes]"]
    assert main(["--samples", str(store), "--out", str(whole), *settings]) == 0
    assert main(["--samples", str(store), "--out", str(streamed), *settings, "--set", "chunk_dates=3"]) == 0
    keys = ["model", "metric", "date", "quantile", "threshold"]
    a = pd.read_parquet(whole).set_index(keys)["value"].sort_index()
    b = pd.read_parquet(streamed).set_index(keys)["value"].sort_index()
    assert a.index.equals(b.index)
    metrics = a.index.get_level_values("metric")
    assert {"quantile", "exceedance_ratio", "monthly_max", "monthly_max_rel_error"} <= set(metrics)
    bin_width = float(np.nanmax(truth) - np.nanmin(truth)) / 2000
    models = a.index.get_level_values("model")
    approximate = (metrics == "quantile") & (models != "truth")
    np.testing.assert_allclose(b[approximate].to_numpy(), a[approximate].to_numpy(), atol=2 * bin_width)
    relative = metrics == "quantile_rel_error"
    np.testing.assert_allclose(b[relative].to_numpy(), a[relative].to_numpy(), atol=0.01)
    exact = ~approximate & ~relative
    np.testing.assert_allclose(b[exact].to_numpy(), a[exact].to_numpy(), rtol=1e-12, atol=1e-12)


def test_features_stream_exactly(tmp_path: Path, write_samples: Callable[..., Path]) -> None:
    # LR consistency of every model and the perturbation response of a store from LR inputs + 2 K.
    rng = np.random.default_rng(6)
    n_times, n_members, size = 7, 3, 32
    truth = (280 + rng.normal(size=(n_times, size, size))).astype(np.float32)
    truth[:, :5] = np.nan
    members = (
        np.nan_to_num(truth, nan=280.0)[:, None] + rng.normal(size=(n_times, n_members, size, size))
    ).astype(np.float32)
    store = write_samples(tmp_path / "s.zarr", members, truth)
    warmer = write_samples(tmp_path / "w.zarr", members + 1.5, truth, lr_offset=2.0)
    whole, streamed = tmp_path / "whole.parquet", tmp_path / "streamed.parquet"
    settings = ["--set", "families=[features]", "--compare", f"warm={warmer}"]
    assert main(["--samples", str(store), "--out", str(whole), *settings]) == 0
    assert main(["--samples", str(store), "--out", str(streamed), *settings, "--set", "chunk_dates=3"]) == 0
    a = pd.read_parquet(whole).set_index(["model", "metric"])["value"].sort_index()
    b = pd.read_parquet(streamed).set_index(["model", "metric"])["value"].sort_index()
    assert a.index.equals(b.index)
    assert {"lr_rmse", "lr_bias", "perturbation_ratio"} <= set(a.index.get_level_values("metric"))
    assert a[("warm", "perturbation_ratio")] == pytest.approx(1.5 / 2.0, rel=0.05)
    np.testing.assert_allclose(b.to_numpy(), a.to_numpy(), rtol=1e-10, atol=1e-12)


def test_streamed_reliability_crpss_and_wet_intensity_error_equal_the_in_memory_rows(
    tmp_path: Path, write_samples: Callable[..., Path]
) -> None:
    rng = np.random.default_rng(7)
    truth = (rng.gamma(0.5, 2.0, size=(9, 24, 24)) * (rng.random((9, 24, 24)) > 0.4)).astype(np.float32)
    truth[:, :5] = np.nan
    members = (np.nan_to_num(truth)[:, None] * rng.lognormal(0, 0.5, size=(9, 5, 24, 24))).astype(np.float32)
    store = write_samples(tmp_path / "s.zarr", members, truth, variable="precip", units="mm h-1")
    families = "families=[probabilistic,distributions]"
    whole, streamed = tmp_path / "whole.parquet", tmp_path / "streamed.parquet"
    assert main(["--samples", str(store), "--out", str(whole), "--set", families]) == 0
    assert (
        main(["--samples", str(store), "--out", str(streamed), "--set", families, "--set", "chunk_dates=4"])
        == 0
    )
    keys = ["model", "metric", "threshold", "bin", "reference"]
    metrics = [
        "crpss",
        "reliability_forecast",
        "reliability_observed",
        "reliability_count",
        "wet_mean_intensity_error",
    ]
    a, b = (pd.read_parquet(p) for p in (whole, streamed))
    a, b = (t[t["metric"].isin(metrics)].set_index(keys)["value"].sort_index() for t in (a, b))
    assert set(a.index.get_level_values("metric")) == set(metrics)
    assert a.index.equals(b.index)
    np.testing.assert_allclose(b.to_numpy(), a.to_numpy(), rtol=1e-9, atol=1e-12)
