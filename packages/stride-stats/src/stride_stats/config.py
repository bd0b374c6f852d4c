"""Configuration of `stride-stats`."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from stride_core.config import StrictConfig


class StatsConfig(StrictConfig):
    """Offline per-variable statistics of one split of a dataset."""

    dataset: Path
    split: Literal["train", "val", "test"] = "train"
    log_eps: float = Field(default=0.01, gt=0, description="eps in log(x + eps) for non-negative variables.")
    boxcox_shift: float = Field(
        default=0.01, gt=0, description="shift in the Box-Cox of x + shift for non-negative variables."
    )
    boxcox_samples: int = Field(
        default=1_000_000,
        ge=1000,
        le=50_000_000,
        description="Most values of the random subsample the Box-Cox lambda is fitted to (bounds memory).",
    )
    seed: int = Field(default=0, ge=0, description="Seed of the Box-Cox subsample (same seed, same lambda).")
    wet_threshold: float = Field(
        default=0.1,
        ge=0,
        description="wet_fraction is the share of values above this, in the variable's units "
        "(positive-definite variables only).",
    )
    variables_file: Path | None = Field(
        default=None, description="YAML overriding or adding registry entries (which are positive-definite)."
    )
    histogram_bins: int = Field(
        default=20000,
        ge=100,
        le=1_000_000,
        description="Bins over the value range of the histogram behind the quantiles (their error is about "
        "one bin).",
    )
    task_mb: float = Field(
        default=32.0,
        gt=0,
        le=4096,
        description="MB of float32 values one Dask task reads, in one zarr selection of many chunks (memory is "
        "a few times this per worker thread).",
    )
    scheduler: str | None = Field(
        default=None, description="Dask scheduler address (tcp://host:port); default: local threads."
    )
    output: Path = Path("stats.parquet")
