"""The six CLIs chained on real ERA5 data: every artifact matches its schema and its content makes sense."""

from __future__ import annotations

import hashlib
import json

import jsonschema
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import xarray as xr
import zarr
from conftest import REPO, Chain
from mlflow.tracking import MlflowClient

SCHEMAS = REPO / "schemas" / "json"
pytestmark = pytest.mark.e2e


def check_schema(manifest: dict[str, object]) -> None:
    """Validate a manifest against the committed JSON Schema of its contract."""
    schema = json.loads((SCHEMAS / f"{manifest['contract']}.v{manifest['version']}.schema.json").read_text())
    jsonschema.validate(manifest, schema)


def zarr_manifest(path: object) -> dict[str, object]:
    manifest: dict[str, object] = zarr.open_group(path, mode="r").attrs["stride"]
    check_schema(manifest)
    return manifest


def parquet_manifest(path: object) -> dict[str, object]:
    manifest: dict[str, object] = json.loads(pq.read_schema(path).metadata[b"stride"])
    check_schema(manifest)
    return manifest


def test_dataset(chain: Chain) -> None:
    manifest = zarr_manifest(chain.path("dataset.zarr"))
    ds = xr.open_zarr(chain.path("dataset.zarr"))
    assert manifest["grid"]["hr_shape"] == [32, 48] and manifest["grid"]["lr_shape"] == [8, 12]
    assert ds["target"].shape == (744, 1, 32, 48) and ds["cond_dynamic"].shape == (744, 1, 8, 12)
    assert [v["units"] for v in manifest["target"]] == ["K"]
    assert [v["name"] for v in manifest["static"]] == ["orography", "lsm"]
    assert not np.isnan(ds["target"].values).any()
    assert 250 < float(ds["target"].mean()) < 300
    assert sorted(np.unique(ds["split"].values).tolist()) == [0, 1, 2]
    assert chain.path("dataset.zarr.resolved.yaml").is_file()


def test_stats(chain: Chain) -> None:
    manifest = parquet_manifest(chain.path("stats.parquet"))
    table = pd.read_parquet(chain.path("stats.parquet"))
    assert manifest["split"] == "train" and manifest["n_times"] == 504
    target = table[table["role"] == "target"].iloc[0]
    assert 270 < target["mean"] < 290 and 0 < target["std"] < 10 and target["valid_fraction"] == 1.0


def test_checkpoint(chain: Chain) -> None:
    manifest = json.loads(chain.path("checkpoint/manifest.json").read_text())
    check_schema(manifest)
    spec = manifest["model_spec"]
    assert (spec["in_dynamic_channels"], spec["in_static_channels"], spec["out_channels"]) == (1, 2, 1)
    assert manifest["step"] == 30 and manifest["training_config"]["training"]["steps"] == 30
    assert manifest["transforms"]["target"][0]["transform"]["kind"] == "zscore"
    assert (chain.path("checkpoint") / manifest["ema_weights_file"]).is_file()


def test_samples(chain: Chain) -> None:
    manifest = zarr_manifest(chain.path("samples.zarr"))
    samples = xr.open_zarr(chain.path("samples.zarr"))
    dataset = xr.open_zarr(chain.path("dataset.zarr"))
    assert samples["members"].shape == (6, 3, 1, 32, 48)
    assert samples["pmm"].shape == samples["members"].isel(member=0).shape
    for name in ("members", "pmm", "target", "cond_dynamic"):
        assert np.isfinite(samples[name].values).all(), name
    assert float(samples["members"].min()) > 240 and float(samples["members"].max()) < 320
    truth = dataset["target"].sel(time=samples["time"]).values
    np.testing.assert_array_equal(samples["target"].values, truth)
    assert manifest["sampler"]["steps"] == 6 and manifest["n_members"] == 3 and manifest["split"] == "test"
    assert [v["units"] for v in manifest["target"]] == ["K"]
    # Seeds follow the rule stored with them: SHA-256 of (base seed, the date's ISO stamp, member), 63 bits.
    stamp = pd.Timestamp(samples["time"].values[1]).strftime("%Y-%m-%dT%H:%M:%S")
    expected = [
        int.from_bytes(
            hashlib.sha256(f"stride-member|{manifest['base_seed']}|{stamp}|{k}".encode()).digest()[:8]
        )
        & (2**63 - 1)
        for k in range(3)
    ]
    assert samples["seeds"].values[1].tolist() == expected and manifest["seed_rule"]


def test_metrics_cover_stride_and_bicubic(chain: Chain) -> None:
    manifest = parquet_manifest(chain.path("metrics.parquet"))
    table = pd.read_parquet(chain.path("metrics.parquet"))
    assert manifest["models"] == [
        "bicubic",
        "bilinear",
        "climatology",
        "stride",
    ]  # climatology: on by default
    overall = table[table["date"].isna() & table["wavenumber"].isna()]
    for model in ("stride", "bicubic", "bilinear"):
        metrics = set(overall[overall["model"] == model]["metric"])
        assert {"crps", "rmse_mean", "mae_mean", "bias_mean", "spectrum_error"} <= metrics, model
    stride = set(overall[overall["model"] == "stride"]["metric"])
    assert {"spread_skill", "rmse_pmm", "mae_pmm", "bias_pmm"} <= stride
    assert set(table[table["metric"] == "psd"]["model"]) == {
        "truth",
        "stride",
        "bicubic",
        "bilinear",
        "climatology",
    }
    assert np.isfinite(table["value"]).all()


def test_plots(chain: Chain) -> None:
    pngs = sorted(chain.path("plots").glob("*.png"))
    assert [p.name for p in pngs if p.name.startswith("quicklook")] == [
        "quicklook_t2m_20190326T0000.png",
        "quicklook_t2m_20190331T0000.png",
    ]
    assert chain.path("plots/metrics_summary.png") in pngs
    for png in pngs:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


def test_one_mlflow_run_per_cli_with_lineage(chain: Chain) -> None:
    client = MlflowClient(f"sqlite:///{chain.path('mlflow.db')}")
    experiment = client.get_experiment_by_name("stride")
    runs = {r.data.tags["stride.tool"]: r for r in client.search_runs([experiment.experiment_id])}
    assert set(runs) == {
        "stride-data build",
        "stride-stats",
        "stride-train",
        "stride-generate",
        "stride-eval",
        "stride-plot",
    }
    assert all(r.info.status == "FINISHED" and r.data.tags["stride.version"] for r in runs.values())
    run_id = {tool: r.info.run_id for tool, r in runs.items()}
    lineage = {
        "stride-stats": {"dataset": "stride-data build"},
        "stride-train": {"dataset": "stride-data build", "stats": "stride-stats"},
        "stride-generate": {"checkpoint": "stride-train", "dataset": "stride-data build"},
        "stride-eval": {"samples": "stride-generate"},
        "stride-plot": {"samples": "stride-generate", "metrics": "stride-eval"},
    }
    for tool, inputs in lineage.items():
        for role, producer in inputs.items():
            assert runs[tool].data.tags[f"stride.input.{role}.run_id"] == run_id[producer], (tool, role)
    assert runs["stride-train"].data.params["training.steps"] == "30"
    assert "loss" in runs["stride-train"].data.metrics and "val_loss_ema" in runs["stride-train"].data.metrics
    assert "stride.t2m.crps" in runs["stride-eval"].data.metrics
    artifacts = {a.path for a in client.list_artifacts(run_id["stride-plot"], "plots")}
    assert "plots/metrics_summary.png" in artifacts
    assert runs["stride-data build"].data.tags["stride.output.uri"].endswith("dataset.zarr")
