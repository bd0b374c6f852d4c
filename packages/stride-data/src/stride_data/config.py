"""Configuration of `stride-data build`."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from stride_core.config import StrictConfig
from stride_data.regions import RegionConfig


class SourceConfig(StrictConfig):
    """One source file, or several on the same grid merged along time.

    Relative paths are looked up under $STRIDE_DATA (default ../shared/data).
    """

    path: Path | list[Path] = Field(description="A file, or a list of files on one grid to merge along time.")
    engine: Literal["h5netcdf", "netcdf4", "zarr"] = "h5netcdf"

    @property
    def files(self) -> list[Path]:
        return self.path if isinstance(self.path, list) else [self.path]

    @model_validator(mode="after")
    def _some_file(self) -> SourceConfig:
        if not self.files:
            raise ValueError("give at least one source file")
        return self


class CoarsenConfig(StrictConfig):
    """How LR conditioning is derived from HR: conservative (area-weighted) block coarsening."""

    factor: int = Field(default=4, ge=2, le=64)
    min_valid_fraction: float = Field(default=0.5, gt=0, le=1)


class DateRange(StrictConfig):
    start: datetime
    end: datetime

    @model_validator(mode="after")
    def _ordered(self) -> DateRange:
        if self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")
        return self


class SplitsConfig(StrictConfig):
    train: DateRange
    val: DateRange | None = None
    test: DateRange | None = None

    @model_validator(mode="after")
    def _disjoint(self) -> SplitsConfig:
        ranges = [(name, r) for name, r in self.items()]
        for index, (name_a, a) in enumerate(ranges):
            for name_b, b in ranges[index + 1 :]:
                if a.start <= b.end and b.start <= a.end:
                    raise ValueError(
                        f"splits '{name_a}' and '{name_b}' overlap; date ranges must be disjoint"
                    )
        return self

    def items(self) -> list[tuple[str, DateRange]]:
        return [(name, r) for name, r in (("train", self.train), ("val", self.val), ("test", self.test)) if r]


class DataBuildConfig(StrictConfig):
    """Build dataset.zarr: HR target, LR dynamic conditioning, HR statics, splits and provenance."""

    source: SourceConfig
    target: list[str] = Field(min_length=1, description="Registry keys of the HR target variables.")
    dynamic: list[str] = Field(
        min_length=1, description="Registry keys of LR dynamic conditioning variables."
    )
    static: list[str] = Field(default_factory=list, description="Registry keys of HR static fields.")
    coarsen: CoarsenConfig = CoarsenConfig()
    region: RegionConfig | None = Field(default=None, description="Crop the source to this region first.")
    conditioning_fill: dict[str, float] = Field(
        default_factory=dict,
        description="Value (physical units) for LR cells without enough valid HR cells, per dynamic variable; "
        "without one such cells are an error, since the model is never fed NaN.",
    )
    splits: SplitsConfig
    variables_file: Path | None = Field(default=None, description="YAML overriding/adding registry entries.")
    time_chunk: int = Field(default=24, ge=1, description="Time steps per Zarr chunk.")
    output: Path = Path("dataset.zarr")
