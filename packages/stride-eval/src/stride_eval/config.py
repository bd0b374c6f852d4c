"""Configuration of `stride-eval`."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from stride_core.config import StrictConfig

FamilyName = Literal["probabilistic", "deterministic", "scale", "occurrence"]


class EvalConfig(StrictConfig):
    """Evaluate samples.zarr against its targets, with baselines, into one long metrics table."""

    samples: Path
    output: Path = Path("metrics.parquet")
    families: list[FamilyName] = Field(
        default=["probabilistic", "deterministic", "scale", "occurrence"], min_length=1
    )
    baselines: list[Literal["bicubic"]] = Field(default=["bicubic"])
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
    variables_file: Path | None = Field(
        default=None, description="YAML overriding or adding registry entries (which are positive-definite)."
    )
