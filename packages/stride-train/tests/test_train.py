import os
import signal
from pathlib import Path

import pytest
import torch

from stride_contracts import CheckpointManifest
from stride_core.artifacts import read_manifest_folder
from stride_core.testing import write_synthetic_dataset, write_synthetic_stats
from stride_model import load_weights
from stride_train import loop
from stride_train.cli import main

TINY = [
    "--set",
    "model.model_channels=8",
    "--set",
    "model.channel_mult=[1,2]",
    "--set",
    "model.attn_resolutions=[1]",
    "--set",
    "optim.warmup_steps=2",
    "--set",
    "training.val_every=4",
    "--set",
    "training.log_every=2",
    "--set",
    "training.batch_size=4",
    "--set",
    "training.val_samples=4",
    "--set",
    "training.threads=1",
]


@pytest.fixture
def inputs(tmp_path: Path) -> tuple[Path, Path]:
    write_synthetic_dataset(tmp_path / "dataset.zarr", nan_fraction=0.1)
    write_synthetic_stats(tmp_path / "dataset.zarr", tmp_path / "stats.parquet")
    return tmp_path / "dataset.zarr", tmp_path / "stats.parquet"


def train(inputs: tuple[Path, Path], out: Path, *extra: str) -> int:
    dataset, stats = inputs
    return main(["--dataset", str(dataset), "--stats", str(stats), "--out", str(out), *TINY, *extra])


def test_checkpoint_contract_and_nan_targets(inputs: tuple[Path, Path], tmp_path: Path) -> None:
    assert train(inputs, tmp_path / "ckpt", "--steps", "4") == 0
    manifest = read_manifest_folder(tmp_path / "ckpt", CheckpointManifest)
    assert manifest.step == 4 and manifest.model_spec.in_static_channels == 2
    assert manifest.model_spec.hr_shape == (16, 24) and manifest.model_spec.lr_shape == (4, 6)
    assert [t.transform.kind for t in manifest.transforms.static] == ["zscore", "minmax"]
    assert {"loss", "val_loss_ema"} <= set(manifest.final_metrics)
    weights = load_weights(tmp_path / "ckpt" / manifest.ema_weights_file)
    assert all(torch.isfinite(v).all() for v in weights.values())
    assert not (tmp_path / ".ckpt.inprogress").exists()


def test_killed_run_resumes_exactly(
    inputs: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert train(inputs, tmp_path / "straight", "--steps", "8") == 0

    original = loop.learning_rate

    def preempted_at_step_3(step: int, config: object) -> float:
        if step == 3:
            os.kill(os.getpid(), signal.SIGUSR1)  # what SLURM sends before pre-emption
        return original(step, config)  # type: ignore[arg-type]

    monkeypatch.setattr(loop, "learning_rate", preempted_at_step_3)
    assert train(inputs, tmp_path / "resumed", "--steps", "8") == 2
    assert (tmp_path / ".resumed.inprogress" / "state.pt").is_file()
    assert not (tmp_path / "resumed").exists()
    monkeypatch.setattr(loop, "learning_rate", original)
    assert train(inputs, tmp_path / "resumed", "--steps", "8") == 0

    for name in ("weights.pt", "ema_weights.pt"):
        straight = load_weights(tmp_path / "straight" / name)
        resumed = load_weights(tmp_path / "resumed" / name)
        for key, value in straight.items():
            torch.testing.assert_close(resumed[key], value, rtol=0, atol=1e-6, msg=f"{name}:{key}")


def test_resume_refuses_a_changed_config(
    inputs: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / ".ckpt.inprogress"
    state.mkdir()
    (state / "fingerprint").write_text("other\n")
    assert train(inputs, tmp_path / "ckpt", "--steps", "4") == 2
    assert "different settings" in capsys.readouterr().err


def test_regression_kind_trains(inputs: tuple[Path, Path], tmp_path: Path) -> None:
    assert train(inputs, tmp_path / "reg", "--steps", "2", "--set", "model.kind=regression") == 0
    assert read_manifest_folder(tmp_path / "reg", CheckpointManifest).model_spec.kind == "regression"
