"""`stride-train`: train an EDM diffusion (or regression) downscaling model, writing checkpoint/."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from stride_core.cli import Option, Tool, run_tool
from stride_train.config import TrainConfig
from stride_train.run import run_train

TOOL = Tool(
    name="stride-train",
    summary="Train an EDM-preconditioned UNet on dataset.zarr with offline stats; a killed run resumes "
    "when the same command is run again.",
    example="stride-train --dataset demo-out/dataset.zarr --stats demo-out/stats.parquet --out demo-out/checkpoint "
    "--steps 2000\n"
    "stride-train --config configs/train_era5_uk.yaml --set model.kind=regression --out regression-checkpoint",
    config_model=TrainConfig,
    run=run_train,
    options=(
        Option("--dataset", "dataset", "input dataset.zarr", Path),
        Option("--stats", "stats", "input stats.parquet (train split)", Path),
        Option("--out", "output", "output checkpoint folder", Path),
        Option("--steps", "training.steps", "optimizer steps", int),
        Option("--batch-size", "training.batch_size", "samples per step", int),
    ),
)


def main(argv: Sequence[str] | None = None) -> int:
    return run_tool(TOOL, argv)


if __name__ == "__main__":
    raise SystemExit(main())
