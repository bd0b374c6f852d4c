"""Radar precipitation (KNMI, 1 km, projected, 74% NaN) through the chain: NaN is masked, never fed to the model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
import zarr
from conftest import DATA, chain_commands, run_chain

pytestmark = pytest.mark.e2e
KNMI = "radar_knmi_2010-08-26.nc"


@pytest.fixture(scope="module")
def radar_chain(tmp_path_factory: pytest.TempPathFactory, cli_env: dict[str, str]) -> Path:
    if not (DATA / KNMI).is_file():
        pytest.fail(
            f"real sample data missing: {DATA / KNMI} (public source: pySTEPS/pysteps-data radar/KNMI)"
        )
    out = tmp_path_factory.mktemp("radar")
    config = out / "knmi.yaml"
    # A box at the edge of the radar coverage, so targets hold both valid cells and NaN.
    config.write_text(
        f"source: {{path: {KNMI}}}\ntarget: [precip]\ndynamic: [precip]\nstatic: [orography, lsm]\n"
        "coarsen: {factor: 8}\nregion: {center: [53.9, 5.0], size: [96, 96]}\n"
        "conditioning_fill: {precip: 0.0}\n"
        "splits:\n  train: {start: 2010-08-26T00:00, end: 2010-08-26T05:00}\n"
        "  val: {start: 2010-08-26T05:05, end: 2010-08-26T06:00}\n"
        "  test: {start: 2010-08-26T06:05, end: 2010-08-26T07:35}\n"
    )
    commands = chain_commands(
        out,
        data=["--config", str(config)],
        train=[
            "--steps",
            "6",
            "--batch-size",
            "4",
            "--set",
            "model.model_channels=8",
            "--set",
            "model.attn_resolutions=[]",
            "--set",
            "optim.warmup_steps=2",
            "--set",
            "training.val_every=3",
            # The whole data and model feature set: random 48x48 patches drawn towards rain, 3 stacked steps,
            # hour-of-day encoding, a context region, FiLM embeddings and the RainGate.
            "--set",
            "data.patch=[48,48]",
            "--set",
            "data.rain_weighting={variable: precip, threshold: 0.1}",
            "--set",
            "data.features={temporal_steps: 3, time_features: [hour], context_margin: 2}",
            "--set",
            "model.context_encoder=true",
            "--set",
            "model.film_doy=true",
            "--set",
            "model.film_vars=true",
            "--set",
            "model.rain_gate={threshold: 0.1}",
        ],
        generate=["--members", "2", "--steps", "4", "--set", "max_dates=3"],
    )
    run_chain(commands[:-1], cli_env)  # plotting is covered by the ERA5 chain
    return out


def test_projected_dataset_with_nan_coverage(radar_chain: Path) -> None:
    manifest = zarr.open_group(radar_chain / "dataset.zarr", mode="r").attrs["stride"]
    assert manifest["grid"]["kind"] == "projected" and "stereographic" in manifest["grid"]["crs"].lower()
    assert manifest["grid"]["hr_shape"] == [96, 96] and manifest["grid"]["lr_shape"] == [12, 12]
    ds = xr.open_zarr(radar_chain / "dataset.zarr")
    valid = np.isfinite(ds["target"].values)
    assert 0.05 < valid.mean() < 0.95  # partly covered
    assert np.isfinite(ds["cond_dynamic"].values).all()


def test_stats_count_only_valid_cells(radar_chain: Path) -> None:
    table = pd.read_parquet(radar_chain / "stats.parquet")
    target = table[table["role"] == "target"].iloc[0]
    ds = xr.open_zarr(radar_chain / "dataset.zarr")
    train = ds["target"].values[ds["split"].values == 0]
    assert target["count"] == np.isfinite(train).sum()
    assert target["mean"] == pytest.approx(float(np.nanmean(train)), rel=1e-6)
    assert target["log_mean"] is not None and np.isfinite(target["log_mean"])


def test_training_loss_and_metrics_are_finite_despite_nan(radar_chain: Path) -> None:
    manifest = json.loads((radar_chain / "checkpoint" / "manifest.json").read_text())
    assert manifest["transforms"]["target"][0]["transform"]["kind"] == "log_zscore"
    assert np.isfinite(manifest["final_metrics"]["loss"]) and np.isfinite(
        manifest["final_metrics"]["val_loss_ema"]
    )
    samples = xr.open_zarr(radar_chain / "samples.zarr")
    assert np.isnan(samples["target"].values).any() and np.isfinite(samples["members"].values).all()
    assert (samples["members"].values >= 0).all()  # precipitation stays non-negative after the inverse
    metrics = pd.read_parquet(radar_chain / "metrics.parquet")
    assert np.isfinite(metrics["value"]).all()
    assert {"crps", "rmse_mean"} <= set(metrics[metrics["model"] == "bicubic"]["metric"])


def test_patch_trained_model_with_every_feature_samples_the_whole_domain(radar_chain: Path) -> None:
    manifest = json.loads((radar_chain / "checkpoint" / "manifest.json").read_text())
    spec, features = manifest["model_spec"], manifest["features"]
    assert features == {
        "temporal_steps": 3,
        "temporal_mode": "centred",
        "temporal_edge": "clamp",
        "time_features": ["hour"],
        "context_margin": 2,
    }
    # Channel accounting from the adapter: trained on 48x48 HR patches with a 6+2*2 LR context box.
    assert (spec["hr_shape"], spec["lr_shape"], spec["context_shape"]) == ([48, 48], [6, 6], [10, 10])
    assert (spec["in_dynamic_channels"], spec["temporal_steps"], spec["n_time_features"]) == (1, 3, 2)
    assert spec["use_rain_gate"] and spec["rain_gate_threshold"] == 0.1 and spec["num_var_labels"] == 1
    assert "rain_gate_bce" in manifest["final_metrics"]
    members = xr.open_zarr(radar_chain / "samples.zarr")["members"]
    assert members.shape[-2:] == (96, 96)  # generated on the whole region, not a patch
