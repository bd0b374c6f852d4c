"""Contract for `metrics.parquet`: one long table of evaluation results."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Literal

from pydantic import Field, field_validator

from stride_contracts.base import ArtifactHeader, StrictModel


class MetricRow(StrictModel):
    """One value: a metric of one model for one variable, over all dates or one date, maybe per wavenumber."""

    model: str = Field(
        description="'stride', a baseline such as 'bicubic', or 'truth' for reference spectra."
    )
    variable: str
    metric: str
    family: str = Field(description="Evaluation family: probabilistic, deterministic, scale, ...")
    date: datetime | None = Field(default=None, description="None for an aggregate over all dates.")
    wavenumber: float | None = Field(default=None, description="Cycles per domain, for spectra.")
    units: str = ""
    value: float

    @field_validator("value")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("metric values must be finite; drop rows that do not apply")
        return value


METRICS_COLUMNS = tuple(MetricRow.model_fields)


class MetricsManifest(ArtifactHeader):
    """Parquet schema metadata key `stride` of `metrics.parquet`."""

    contract: Literal["stride.metrics"] = "stride.metrics"
    version: Literal[1] = 1
    models: list[str] = Field(min_length=1)
    n_dates: int = Field(ge=1)
    families: list[str]
