"""Contract for `stats.parquet`: offline per-variable statistics of the train split."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from stride_contracts.base import ArtifactHeader, StrictModel

QUANTILE_LEVELS = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)


class StatsRow(StrictModel):
    """One row of the stats table: one variable in one role."""

    role: Literal["target", "dynamic", "static"]
    variable: str
    units: str
    count: int = Field(ge=0, description="Number of valid (non-NaN) values.")
    valid_fraction: float = Field(ge=0, le=1)
    mean: float
    std: float = Field(ge=0)
    min: float
    max: float
    q01: float
    q05: float
    q25: float
    q50: float
    q75: float
    q95: float
    q99: float
    log_mean: float | None = Field(
        default=None, description="Mean of log(x + log_eps); None if x < 0 occurs."
    )
    log_std: float | None = None
    log_eps: float | None = None


STATS_COLUMNS = tuple(StatsRow.model_fields)


class StatsManifest(ArtifactHeader):
    """Parquet schema metadata key `stride` of `stats.parquet`."""

    contract: Literal["stride.stats"] = "stride.stats"
    version: Literal[1] = 1
    split: Literal["train", "val", "test"] = "train"
    n_times: int = Field(ge=1, description="Time steps the statistics were computed over.")
    quantile_levels: tuple[float, ...] = QUANTILE_LEVELS
