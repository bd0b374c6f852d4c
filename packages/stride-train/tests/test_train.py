import logging
import math
import os
import signal
from pathlib import Path

import pytest
import torch
from mlflow.tracking import MlflowClient

from stride_contracts import CheckpointManifest
from stride_core.artifacts import read_manifest_folder
from stride_core.cli import EXIT_PREEMPTED
from stride_model import load_weights
from stride_train import loop
from stride_train.cli import main


def train(tiny_args: list[str], out: Path, *extra: str) -> int:
    return main([*tiny_args, "--out", str(out), *extra])


def test_checkpoint_contract_and_nan_targets(tiny_args: list[str], tmp_path: Path) -> None:
    assert train(tiny_args, tmp_path / "ckpt", "--steps", "4") == 0
    manifest = read_manifest_folder(tmp_path / "ckpt", CheckpointManifest)
    assert manifest.step == 4 and manifest.model_spec.in_static_channels == 2
    assert manifest.model_spec.hr_shape == (16, 24) and manifest.model_spec.lr_shape == (4, 6)
    assert [t.transform.kind for t in manifest.transforms.static] == ["zscore", "minmax"]
    assert {"loss", "val_loss_ema"} <= set(manifest.final_metrics)
    weights = load_weights(tmp_path / "ckpt" / manifest.ema_weights_file)
    assert all(torch.isfinite(v).all() for v in weights.values())
    assert not (tmp_path / ".ckpt.inprogress").exists()
    # val_every=4: the only validation is at step 4, so best and last EMA weights are the same.
    assert manifest.best_step == 4 and manifest.best_val_loss == manifest.final_metrics["val_loss_ema"]
    assert manifest.best_ema_weights_file == "best_ema_weights.pt"
    best = load_weights(tmp_path / "ckpt" / manifest.best_ema_weights_file)
    assert all(torch.equal(best[key], value) for key, value in weights.items())

    # The checkpoint is recorded against the run, with throughput and peak memory.
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    (run,) = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert run.data.tags["stride.checkpoint.uri"] == (tmp_path / "ckpt").resolve().as_uri()
    assert run.data.tags["stride.checkpoint.best_step"] == "4"
    assert {"samples_per_s", "peak_rss_mb", "val_loss_ema", "best_val_loss_ema"} <= set(run.data.metrics)
    assert run.data.metrics["peak_rss_mb"] > 10
    assert [a.path for a in client.list_artifacts(run.info.run_id, "checkpoint")] == [
        "checkpoint/manifest.json"
    ]


def test_killed_run_resumes_exactly(
    tiny_args: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # With dropout, so the dropout masks after the restart must be the ones the straight run drew.
    tiny_args = [*tiny_args, "--set", "model.dropout=0.2"]
    assert train(tiny_args, tmp_path / "straight", "--steps", "8") == 0

    original = loop.learning_rate

    def preempted_at_step_3(step: int, config: object) -> float:
        if step == 3:
            os.kill(os.getpid(), signal.SIGUSR1)  # what SLURM sends before pre-emption
        return original(step, config)  # type: ignore[arg-type]

    monkeypatch.setattr(loop, "learning_rate", preempted_at_step_3)
    assert train(tiny_args, tmp_path / "resumed", "--steps", "8") == EXIT_PREEMPTED
    assert (tmp_path / ".resumed.inprogress" / "state.pt").is_file()
    assert not (tmp_path / "resumed").exists()
    monkeypatch.setattr(loop, "learning_rate", original)
    assert train(tiny_args, tmp_path / "resumed", "--steps", "8") == 0

    for name in ("weights.pt", "ema_weights.pt", "best_ema_weights.pt"):
        straight = load_weights(tmp_path / "straight" / name)
        resumed = load_weights(tmp_path / "resumed" / name)
        for key, value in straight.items():
            torch.testing.assert_close(resumed[key], value, rtol=0, atol=1e-6, msg=f"{name}:{key}")


def test_resume_refuses_a_changed_config(
    tiny_args: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / ".ckpt.inprogress"
    state.mkdir()
    (state / "fingerprint").write_text("other\n")
    assert train(tiny_args, tmp_path / "ckpt", "--steps", "4") == 2
    assert "different settings" in capsys.readouterr().err


def test_regression_kind_trains(tiny_args: list[str], tmp_path: Path) -> None:
    assert train(tiny_args, tmp_path / "reg", "--steps", "2", "--set", "model.kind=regression") == 0
    assert read_manifest_folder(tmp_path / "reg", CheckpointManifest).model_spec.kind == "regression"


def test_bf16_precision_trains_and_loads_like_fp32(tiny_args: list[str], tmp_path: Path) -> None:
    assert train(tiny_args, tmp_path / "default", "--steps", "3") == 0
    assert train(tiny_args, tmp_path / "fp32", "--steps", "3", "--set", "training.precision=fp32") == 0
    assert train(tiny_args, tmp_path / "bf16", "--steps", "3", "--set", "training.precision=bf16") == 0
    default, fp32, bf16 = (
        load_weights(tmp_path / name / "ema_weights.pt") for name in ("default", "fp32", "bf16")
    )
    # fp32 is the default, bit for bit (no autocast region at all).
    assert all(torch.equal(fp32[key], value) for key, value in default.items())
    # bf16 autocast covers the forward pass only: the saved weights stay float32, finite, loadable as fp32's
    # are, and differ from fp32's by the forward pass's rounding.
    assert all(value.dtype == torch.float32 and torch.isfinite(value).all() for value in bf16.values())
    assert bf16.keys() == fp32.keys()
    assert any(not torch.equal(bf16[key], value) for key, value in fp32.items())
    manifest = read_manifest_folder(tmp_path / "bf16", CheckpointManifest)
    reference = read_manifest_folder(tmp_path / "fp32", CheckpointManifest)
    assert manifest.training_config["training"]["precision"] == "bf16"
    assert math.isfinite(manifest.final_metrics["loss"])
    assert manifest.final_metrics["loss"] == pytest.approx(reference.final_metrics["loss"], rel=0.1)
    # The precision is an MLflow param of the run.
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert sorted(run.data.params["training.precision"] for run in runs) == ["bf16", "fp32", "fp32"]


def test_precision_is_validated(
    tiny_args: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert train(tiny_args, tmp_path / "ckpt", "--steps", "1", "--set", "training.precision=bf17") == 2
    assert "training.precision" in capsys.readouterr().err


def test_validation_before_the_first_log_window_prints_a_finite_loss(
    tiny_args: list[str], tmp_path: Path
) -> None:
    # Validation at step 2 while the loss window only closes at step 4: the log line printed "train loss nan".
    lines: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: lines.append(record.getMessage())  # type: ignore[method-assign]
    logger = logging.getLogger("stride-train")
    logger.addHandler(handler)
    try:
        extra = ("--steps", "4", "--set", "training.val_every=2", "--set", "training.log_every=4")
        assert train(tiny_args, tmp_path / "ckpt", *extra) == 0
    finally:
        logger.removeHandler(handler)
    validation_lines = [line for line in lines if "EMA validation loss" in line]
    assert [line.split(":")[0] for line in validation_lines] == ["step 2", "step 4"]
    losses = [float(line.split("train loss ")[1].split(",")[0]) for line in validation_lines]
    assert all(math.isfinite(value) for value in losses), validation_lines
