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
    variables_file: Path | None = Field(
        default=None,
        description="YAML overriding or adding variable registry entries (units, cmap, plot_range).",
    )
    land_mask: str | None = Field(
        default=None,
        description="Static variable (land fraction 0..1, or % for sftlf) whose 0.5 contour is drawn as the "
        "coastline; default the first of lsm, sftlf, lsm_era5 the samples hold.",
    )
    outlines: bool = Field(default=True, description="Draw coastlines from the land-sea mask on the maps.")
    validity_mask: str | None = Field(
        default=None,
        description="Static variable > 0.5 where pixels are valid (as stride-eval's validity_mask); pixels "
        "outside are grey in every panel. Pixels where the truth is NaN are grey regardless.",
    )
    eval_figures: Path | None = Field(
        default=None,
        description="Folder of stride-eval's family figures to put in report.html; default "
        "<metrics stem>_figures beside metrics.parquet when it exists.",
    )
    report: bool = Field(
        default=True, description="Write report.html (figures embedded) into the output folder."
    )
