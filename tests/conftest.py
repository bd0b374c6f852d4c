"""End-to-end fixture: run the six CLIs once, as a user would, on the real ERA5-UK sample (smoke budget)."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("STRIDE_DATA") or REPO.parent / "shared" / "data")
ERA5 = "era5_uk_t2m_2019-03.nc"
BIN = Path(sys.executable).parent


@dataclass
class Chain:
    out: Path
    env: dict[str, str]
    logs: dict[str, str] = field(default_factory=dict)

    def path(self, name: str) -> Path:
        return self.out / name


def run_cli(args: list[str], env: dict[str, str], cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    """Run one CLI as a subprocess, as a shell script would."""
    return subprocess.run(
        [str(BIN / args[0]), *args[1:]],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


@pytest.fixture(scope="session")
def cli_env() -> dict[str, str]:
    if not (DATA / ERA5).is_file():
        pytest.fail(
            f"real sample data missing: {DATA / ERA5}; set STRIDE_DATA to the folder holding it (public sources: "
            f"pydata/xarray-data era5-2mt-2019-03-uk.grib and kardaneh/IPSL-AID ERA5_const_sfc_variables.nc)"
        )
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env.update(STRIDE_DATA=str(DATA), STRIDE_PROGRESS="0", PYTHONWARNINGS="ignore::DeprecationWarning")
    return env


@pytest.fixture(scope="session")
def chain(tmp_path_factory: pytest.TempPathFactory, cli_env: dict[str, str]) -> Chain:
    out = tmp_path_factory.mktemp("chain")
    result = Chain(out=out, env=cli_env)
    commands = {
        "stride-data": [
            "stride-data",
            "build",
            "--config",
            "configs/era5_uk.yaml",
            "--out",
            f"{out}/dataset.zarr",
        ],
        "stride-stats": ["stride-stats", "--dataset", f"{out}/dataset.zarr", "--out", f"{out}/stats.parquet"],
        "stride-train": [
            "stride-train",
            "--config",
            "configs/train_era5_uk.yaml",
            "--dataset",
            f"{out}/dataset.zarr",
            "--stats",
            f"{out}/stats.parquet",
            "--out",
            f"{out}/checkpoint",
            "--steps",
            "30",
            "--set",
            "model.model_channels=16",
            "--set",
            "model.channel_mult=[1,2]",
            "--set",
            "model.attn_resolutions=[1]",
            "--set",
            "optim.warmup_steps=5",
            "--set",
            "training.val_every=15",
            "--set",
            "training.batch_size=16",
        ],
        "stride-generate": [
            "stride-generate",
            "--config",
            "configs/generate_era5_uk.yaml",
            "--checkpoint",
            f"{out}/checkpoint",
            "--dataset",
            f"{out}/dataset.zarr",
            "--out",
            f"{out}/samples.zarr",
            "--members",
            "3",
            "--steps",
            "6",
            "--set",
            "date_stride=24",
        ],
        "stride-eval": ["stride-eval", "--samples", f"{out}/samples.zarr", "--out", f"{out}/metrics.parquet"],
        "stride-plot": [
            "stride-plot",
            "--samples",
            f"{out}/samples.zarr",
            "--metrics",
            f"{out}/metrics.parquet",
            "--out",
            f"{out}/plots",
            "--n-dates",
            "2",
        ],
    }
    for tool, args in commands.items():
        completed = run_cli(args, cli_env)
        result.logs[tool] = completed.stderr
        if completed.returncode != 0:
            pytest.fail(f"{tool} exited {completed.returncode}:\n{completed.stderr[-3000:]}")
    return result
