"""Shared fixtures of stride-train's tests: one torch thread, no shared MLflow server, no torchrun env."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from stride_core.testing import write_synthetic_dataset, write_synthetic_stats

TINY_MODEL = [
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


@pytest.fixture(autouse=True)
def _one_thread_single_process(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def synthetic_inputs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """dataset.zarr (10% NaN targets) and its stats.parquet, written once for the session."""
    folder = tmp_path_factory.mktemp("synthetic")
    write_synthetic_dataset(folder / "dataset.zarr", nan_fraction=0.1)
    write_synthetic_stats(folder / "dataset.zarr", folder / "stats.parquet")
    return folder / "dataset.zarr", folder / "stats.parquet"


@pytest.fixture
def tiny_args(synthetic_inputs: tuple[Path, Path]) -> list[str]:
    """CLI arguments of a tiny EDM run on the synthetic inputs (add --out and --steps)."""
    dataset, stats = synthetic_inputs
    return ["--dataset", str(dataset), "--stats", str(stats), *TINY_MODEL]
