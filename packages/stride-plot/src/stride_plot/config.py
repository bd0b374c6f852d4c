"""Configuration of `stride-plot`."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

from pydantic import Field

from stride_core.config import StrictConfig


class PlotConfig(StrictConfig):
    """Quicklooks of chosen dates and a metrics summary, as PNG files in one folder."""

    samples: Path
    metrics: Path | None = Field(default=None, description="metrics.parquet for the summary plot.")
    output: Path = Path("plots")
    dates: list[Annotated[datetime | str, Field(union_mode="left_to_right")]] = Field(
        default_factory=list,
        description="Dates to plot (default: n_dates spread out), read in the samples' calendar "
        "(YYYY-MM-DD[THH:MM[:SS]], so 2000-02-30 names a date of a 360_day run).",
    )
    n_dates: int = Field(default=2, ge=1, le=100)
    variables_file: Path | None = None
