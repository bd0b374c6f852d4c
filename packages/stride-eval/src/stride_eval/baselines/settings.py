"""Settings of the statistical baselines (climatological ensemble, quantile mapping)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from stride_core.config import StrictConfig


class BaselineSettings(StrictConfig):
    """How the climatological ensemble and the quantile-mapping baseline are built from the training split."""

    members: int = Field(default=32, ge=2, description="climatology: members drawn for each evaluated date.")
    season: Literal["month", "window"] = Field(
        default="month",
        description="Which training dates share a date's climate: the same calendar month, or a window of "
        "window_days either side of its day of year (phase of its calendar year). Used by both baselines.",
    )
    window_days: int = Field(default=15, ge=1, le=180, description="Half-width of the day-of-year window.")
    same_hour: bool = Field(
        default=True,
        description="climatology, sub-daily data: draw only from the same hour of day when at least `members` "
        "training dates have it (the diurnal cycle), else from every hour of the season.",
    )
    seed: int = Field(default=0, description="climatology: members are a deterministic draw from this seed.")
    dataset: Path | None = Field(
        default=None,
        description="dataset.zarr holding the training split; default: the dataset the samples were generated "
        "from (their lineage). Set it when that path moved.",
    )
    method: Literal["eqm", "qdm"] = Field(
        default="eqm",
        description="qdm baseline: xsdba's EmpiricalQuantileMapping (the BCSD quantile-mapping step) or "
        "QuantileDeltaMapping (ranks the evaluated dates among themselves: needs decades of them).",
    )
    interpolation: Literal["bicubic", "bilinear"] = Field(
        default="bicubic", description="qdm baseline: how the LR field is brought to the HR grid first."
    )
    nquantiles: int = Field(default=50, ge=5, le=1000, description="qdm baseline: quantiles of the mapping.")
