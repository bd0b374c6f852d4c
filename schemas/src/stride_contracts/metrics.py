"""Contract for `metrics.parquet`: one long table of evaluation results."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, field_validator

from stride_contracts.base import ArtifactHeader, StrictModel


class MetricRow(StrictModel):
    """One value: a metric of one model for one variable, over all dates or one date, maybe per wavenumber.

    The qualifier columns (date, wavenumber, threshold, scale, quantile, lag, bin, reference) are None where
    they do not apply; a row with all of them None is a headline aggregate.
    """

    model: str = Field(
        description="Model label: 'stride' or a label from the checkpoint kind ('regression') or the user "
        "(--compare v2=...), a baseline such as 'bicubic', or 'truth' for the truth's own statistics."
    )
    variable: str
    metric: str
    family: str = Field(description="Evaluation family: probabilistic, deterministic, scale, ...")
    date: str | None = Field(
        default=None,
        description="The date as ISO 8601 (YYYY-MM-DDTHH:MM:SS) in the samples' own calendar (a 360_day model "
        "has 30 February), so any calendar fits one column; None for an aggregate over all dates.",
    )
    wavenumber: float | None = Field(default=None, description="Cycles per domain, for spectra.")
    threshold: float | None = Field(
        default=None, description="Threshold in the variable's units (Brier, FSS, exceedance ratios)."
    )
    scale: float | None = Field(
        default=None,
        description="Spatial scale in HR pixels: average-pooling factor, or FSS neighbourhood width.",
    )
    quantile: float | None = Field(default=None, description="Probability level of a quantile, in (0, 1).")
    lag: float | None = Field(default=None, description="Time lag in steps, for autocorrelations.")
    bin: float | None = Field(
        default=None,
        description="Histogram bin: rank (rank histogram), forecast-probability bin centre (reliability), "
        "value bin centre (value histograms) or spell length in steps (dry spells).",
    )
    reference: str | None = Field(
        default=None, description="The model a skill score is relative to (e.g. 'bicubic' for crpss)."
    )
    units: str = ""
    value: float

    @field_validator("value")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("metric values must be finite; drop rows that do not apply")
        return value


METRICS_COLUMNS = tuple(MetricRow.model_fields)
METRIC_QUALIFIERS = ("date", "wavenumber", "threshold", "scale", "quantile", "lag", "bin", "reference")
"""Columns that qualify a value; a headline aggregate has none of them set."""


class MetricsManifest(ArtifactHeader):
    """Parquet schema metadata key `stride` of `metrics.parquet`."""

    contract: Literal["stride.metrics"] = "stride.metrics"
    version: Literal[1] = 1
    models: list[str] = Field(min_length=1)
    n_dates: int = Field(ge=1)
    families: list[str]
