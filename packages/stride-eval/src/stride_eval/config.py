"""Configuration of `stride-eval`."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from stride_core.config import StrictConfig
from stride_eval.baselines.settings import BaselineSettings

FamilyName = Literal[
    "probabilistic",
    "deterministic",
    "distributions",
    "extremes",
    "spatial",
    "scale",
    "temporal",
    "dates",
    "features",
    "occurrence",
]
DEFAULT_FAMILIES: tuple[FamilyName, ...] = (
    "probabilistic",
    "deterministic",
    "distributions",
    "extremes",
    "spatial",
    "scale",
    "temporal",
    "dates",
    "features",
)
"""Every family but the legacy 'occurrence' (folded into 'distributions')."""
DEFAULT_BASELINES: tuple[Literal["bicubic", "bilinear", "climatology"], ...] = (
    "bicubic",
    "bilinear",
    "climatology",
)
"""On by default; climatology only where the training split is found (the samples' lineage or baseline.dataset)."""
Mode = Literal["minimal", "metrics", "plots", "full"]
LABEL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"


class EvalConfig(StrictConfig):
    """Evaluate samples.zarr against its targets, with baselines, into one long metrics table."""

    samples: Path
    output: Path = Path("metrics.parquet")
    mode: Mode = Field(
        default="metrics",
        description="minimal: the probabilistic and deterministic headline scores, no per-date rows; "
        "metrics: every selected family's rows in metrics.parquet; plots: every selected family's "
        "figures (no table); full: both.",
    )
    families: list[FamilyName] = Field(
        default=list(DEFAULT_FAMILIES),
        min_length=1,
        description="Families to run ('occurrence' is part of 'distributions', kept for old configs).",
    )
    baselines: list[Literal["bicubic", "bilinear", "climatology", "qdm"]] = Field(
        default=list(DEFAULT_BASELINES),
        description="Baselines scored beside the model, and the references of the CRPS skill scores: "
        "bicubic/bilinear interpolation of the LR input and qdm (interpolation + quantile mapping fitted on "
        "the training split) when the target is an LR input; climatology (an ensemble of training-split "
        "truths of the same season, the standard reference when the target is not an LR input) whenever "
        "the samples' dataset is known (see `baseline`; skipped with a warning otherwise). "
        "--set baselines=[bicubic,bilinear] turns climatology off.",
    )
    baseline: BaselineSettings = Field(
        default_factory=BaselineSettings, description="Settings of the climatology and qdm baselines."
    )
    label: str | None = Field(
        default=None,
        pattern=LABEL_PATTERN,
        description="Model label of --samples in the table; default from the checkpoint kind: 'stride' for "
        "an EDM model, 'regression' for a regression model.",
    )
    compare: dict[str, Path] = Field(
        default_factory=dict,
        description="Other samples stores scored side by side, label -> path (--compare LABEL=PATH, "
        "repeatable); same grid, variables and dates as --samples.",
    )
    per_date: bool = Field(default=True, description="Also write per-date rows for the headline metrics.")
    high_k_fraction: float = Field(
        default=0.5, gt=0, le=1, description="Upper share of wavenumbers in spectrum_error."
    )
    wet_threshold: float = Field(
        default=0.1,
        ge=0,
        description="occurrence family: a pixel is wet above this, in the variable's units "
        "(positive-definite variables only).",
    )
    thresholds: dict[str, list[float]] = Field(
        default_factory=dict,
        description="Event thresholds per variable in its units (Brier, reliability, FSS, exceedance); "
        "variables not listed use the truth's quantiles at threshold_quantiles.",
    )
    threshold_quantiles: list[float] = Field(
        default=[0.5, 0.9, 0.99], description="Truth quantiles used as thresholds where none are configured."
    )
    quantiles: list[float] = Field(
        default=[0.9, 0.95, 0.99, 0.999], description="extremes family: the quantile levels compared."
    )
    fss_scales: list[int] = Field(
        default=[1, 5, 11, 25], description="spatial family: FSS neighbourhood widths in HR pixels."
    )
    pool_factors: list[int] = Field(default=[2, 4, 8], description="scale family: average-pooling factors.")
    variogram_lags: list[int] = Field(
        default=[1, 2, 4, 8, 16, 32],
        description="spatial family: semivariogram lags in HR pixels (those not below the grid's size are "
        "skipped).",
    )
    lags: list[int] = Field(
        default=[1, 2], description="temporal family: autocorrelation lags in time steps."
    )
    dates: list[datetime] = Field(default_factory=list, description="dates family: dates scored one by one.")
    top_dates: int = Field(
        default=3,
        ge=0,
        description="dates family: also the dates of highest spatial-mean truth (wettest/hottest).",
    )
    validity_mask: str | None = Field(
        default=None,
        description="A static variable (e.g. 'lsm') whose pixels <= 0.5 are invalid (sea in a land-only "
        "evaluation), masked like NaN truth in every family.",
    )
    land_mask: str | None = Field(
        default=None,
        description="A static land fraction (0..1, or % when its units say so) whose 0.5 contour is drawn as the "
        "coastline on the family map figures; default the first of lsm, sftlf, lsm_era5 among the statics.",
    )
    plots_dir: Path | None = Field(
        default=None,
        description="Folder for the family figures (modes plots and full); default <output stem>_figures "
        "beside the output.",
    )
    chunk_dates: int | None = Field(
        default=None,
        ge=1,
        description="Read the samples this many dates at a time (bounded memory on stores larger than RAM); "
        "every family streams (see stride_eval.streaming for the few histogram-based quantiles) and draws its "
        "figure in modes plots and full (score maps from the summed errors, the chosen dates' fields kept).",
    )
    variables_file: Path | None = Field(
        default=None, description="YAML overriding or adding registry entries (which are positive-definite)."
    )

    @field_validator("compare", mode="before")
    @classmethod
    def _pairs(cls, value: Any) -> Any:
        """--compare gives LABEL=PATH strings; a YAML config gives a mapping."""
        if isinstance(value, str):
            value = [value]
        if isinstance(value, list):
            pairs: dict[str, str] = {}
            for item in value:
                label, sep, path = str(item).partition("=")
                if not sep or not label or not path:
                    raise ValueError(
                        f"'{item}' is not LABEL=PATH (e.g. --compare regression=reg/samples.zarr)"
                    )
                if label in pairs:
                    raise ValueError(f"label '{label}' is given twice")
                pairs[label] = path
            return pairs
        return value

    @field_validator("threshold_quantiles", "quantiles")
    @classmethod
    def _levels(cls, value: list[float]) -> list[float]:
        for level in value:
            if not 0 < level < 1:
                raise ValueError(f"quantile level {level} must be strictly between 0 and 1")
        return value

    @field_validator("fss_scales", "pool_factors", "lags", "variogram_lags")
    @classmethod
    def _positive(cls, value: list[int]) -> list[int]:
        for item in value:
            if item < 1:
                raise ValueError(f"{item} must be a positive integer")
        return value

    @model_validator(mode="after")
    def _labels(self) -> EvalConfig:
        for label in self.compare:
            if not re.match(LABEL_PATTERN, label) or label == "truth":
                raise ValueError(
                    f"compare label '{label}' must be a plain name (letters, digits, _ . -), not 'truth'"
                )
            if label in self.baselines:
                raise ValueError(f"compare label '{label}' is also a baseline name; choose another label")
        return self

    def figures_dir(self) -> Path:
        return self.plots_dir or self.output.parent / f"{self.output.stem}_figures"
