"""chunk_dates: the streamed scores equal the in-memory ones, with memory bounded by a chunk, not the store."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stride_contracts import METRIC_QUALIFIERS
from stride_core.metrics import dry_spell_lengths
from stride_eval.cli import main
from stride_eval.families import REGISTRY
from stride_eval.families.distributions import MAX_SPELL, DrySpellSums
from stride_eval.inputs import EvalInputs, Prediction, masked_inputs


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


def spell_inputs(truth: np.ndarray, members: np.ndarray, times: pd.DatetimeIndex) -> EvalInputs:
    prediction = Prediction(point=members.mean(axis=1), members=members)
    return masked_inputs(
        EvalInputs(
            variable="precip",
            units="mm day-1",
            times=times,
            truth=truth,
            predictions={"stride": prediction},
            positive_definite=True,
        )
    )


def spell_rows(inputs: EvalInputs, chunk: int) -> dict[tuple[str, str, float | None], float]:
    """Dry-spell rows of `inputs` fed to DrySpellSums `chunk` dates at a time."""
    sums = DrySpellSums(inputs)
    for start in range(0, len(inputs.times), chunk):
        part = slice(start, start + chunk)
        predictions = {
            name: Prediction(point=p.point[part], members=None if p.members is None else p.members[part])
            for name, p in inputs.predictions.items()
        }
        sums.update(
            replace(inputs, times=inputs.times[part], truth=inputs.truth[part], predictions=predictions)
        )
    return {(r.model, r.metric, r.bin): r.value for r in sums.rows()}


def test_dry_spells_by_hand_across_chunks_gaps_and_invalid_steps() -> None:
    # Dates: Jan 1-6 consecutive, Jan 9 alone (no spell), Jan 11-13 consecutive. [time, H=1, W=2].
    times = pd.date_range("2020-01-01", periods=6, freq="D").append(
        pd.DatetimeIndex(["2020-01-09", "2020-01-11", "2020-01-12", "2020-01-13"])
    )
    pixel_0 = [0, 0, 0, 5, 0, 0, 0, 0, 0, 5]  # dry 3, wet, dry 2 (ends at the gap) | alone | dry 2, wet
    pixel_1 = [5, 0, 0, 0, 0, 0, 0, 0, np.nan, 0]  # wet, dry 5 | alone | dry 1, invalid, dry 1
    truth = np.array([pixel_0, pixel_1], dtype=np.float32).T[:, None, :]
    # Member 0 dry everywhere (NaN where the truth is): 6, 3 at pixel 0 and 6, 1, 1 at pixel 1. Member 1 wet.
    members = np.stack([np.zeros_like(truth), np.full_like(truth, 5.0)], axis=1)
    expected = {
        "truth": (14 / 6, {1: 2 / 6, 2: 2 / 6, 3: 1 / 6, 5: 1 / 6}),
        "stride": (17 / 5, {1: 2 / 5, 3: 1 / 5, 6: 2 / 5}),
    }
    inputs = spell_inputs(truth, members, times)
    for chunk in (1, 2, 3, 4, 10):
        rows = spell_rows(inputs, chunk)
        for model, (mean, shares) in expected.items():
            assert rows[(model, "dry_spell_mean", None)] == pytest.approx(mean, rel=1e-12), (chunk, model)
            hist = {
                int(b): v for (m, metric, b), v in rows.items() if m == model and metric == "dry_spell_hist"
            }
            assert hist == pytest.approx(shares, rel=1e-12), (chunk, model)
    # The in-memory family writes the same rows.
    family = {
        (r.model, r.metric, r.bin): r.value
        for r in REGISTRY["distributions"](inputs)
        if r.metric.startswith("dry_spell")
    }
    assert family == spell_rows(inputs, 3)


def test_streamed_dry_spells_equal_the_in_memory_rows(
    tmp_path: Path, write_samples: Callable[..., Path]
) -> None:
    # Mostly dry daily precipitation over 40 dates: spells much longer than the chunks of 3 and 7 dates, a
    # fully dry strip whose 40-date spells fall in the last bin (MAX_SPELL), NaN truth on another strip.
    rng = np.random.default_rng(8)
    n_times, n_members, size = 40, 3, 16
    truth = (rng.gamma(0.7, 2.0, (n_times, size, size)) * (rng.random((n_times, size, size)) > 0.8)).astype(
        np.float32
    )
    truth[:, :, :2] = 0.0
    truth[:, :3] = np.nan
    members = (truth[:, None] * rng.lognormal(0, 0.5, (n_times, n_members, size, size))).astype(np.float32)
    members[:, :, 5:8] *= rng.random((n_times, n_members, 3, size)) > 0.5  # members drier than the truth
    members = np.where(np.isnan(members), 0.0, members).astype(np.float32)
    store = write_samples(tmp_path / "s.zarr", members, truth, variable="precip", units="mm day-1")
    settings = ["--set", "families=[distributions]", "--set", "baselines=[bicubic]"]
    whole = tmp_path / "whole.parquet"
    assert main(["--samples", str(store), "--out", str(whole), *settings]) == 0
    keys = ["model", "metric", "bin"]

    def spells(path: Path) -> pd.Series:
        table = pd.read_parquet(path)
        return table[table["metric"].str.startswith("dry_spell")].set_index(keys)["value"].sort_index()

    a = spells(whole)
    assert {"truth", "stride", "bicubic"} <= set(a.index.get_level_values("model"))
    assert a[("truth", "dry_spell_hist", float(MAX_SPELL))] > 0  # the always-dry strip
    # The truth's rows against stride_core's run-length kernel over the whole series.
    lengths = dry_spell_lengths(truth.reshape(n_times, -1), threshold=0.1, axis=0)
    assert a[("truth", "dry_spell_mean", np.nan)] == pytest.approx(lengths.mean(), rel=1e-12)
    shares = np.bincount(np.minimum(lengths, MAX_SPELL), minlength=MAX_SPELL + 1)[1:] / lengths.size
    truth_hist = a.xs(("truth", "dry_spell_hist"), level=("model", "metric"))
    np.testing.assert_allclose(truth_hist.to_numpy(), shares[shares > 0], rtol=1e-12)
    assert (lengths > 7).mean() > 0.2  # many spells cross the chunk boundaries below
    for chunk in (3, 7):
        streamed = tmp_path / f"streamed{chunk}.parquet"
        assert (
            main(
                ["--samples", str(store), "--out", str(streamed), *settings, "--set", f"chunk_dates={chunk}"]
            )
            == 0
        )
        b = spells(streamed)
        assert a.index.equals(b.index), chunk
        np.testing.assert_allclose(b.to_numpy(), a.to_numpy(), rtol=1e-12, atol=0)
