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
    histogram_bins: int = Field(
        default=20000,
        ge=100,
        le=1_000_000,
        description="Bins of the streaming histogram behind the quantiles.",
    )
    time_chunk: int = Field(default=96, ge=1, description="Time steps per Dask chunk (bounds memory).")
    scheduler: str | None = Field(
        default=None, description="Dask scheduler address (tcp://host:port); default: local threads."
    )
    output: Path = Path("stats.parquet")
