"""Configuration of `stride-data build`."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from stride_core.config import StrictConfig
from stride_data.formats import Engine
from stride_data.regions import RegionConfig


class SourceConfig(StrictConfig):
    """One source file, or several on the same grid merged along time.

    Relative paths are looked up under $STRIDE_DATA (default ../shared/data).
    """

    path: Path | list[Path] = Field(description="A file, or a list of files on one grid to merge along time.")
    engine: Engine = Field(
        default="auto",
        description="xarray engine; 'auto' picks it from the file's content (HDF5/NetCDF/GRIB signature or Zarr "
        "metadata), never its extension. GRIB needs the extra: pip install 'stride-data[grib]'.",
    )
    min_lead_hours: float = Field(
        default=0.0,
        ge=0.0,
        description="GRIB forecasts with several runs: each valid time takes the run with the shortest lead time "
        "of at least this many hours (skips the forecast model's spin-up).",
    )

    @property
    def files(self) -> list[Path]:
        return self.path if isinstance(self.path, list) else [self.path]

    @model_validator(mode="after")
    def _some_file(self) -> SourceConfig:
        if not self.files:
            raise ValueError("give at least one source file")
        return self


RegridMethod = Literal["conservative", "bilinear", "nearest"]


class LRSourceConfig(SourceConfig):
    """LR conditioning from a separate (coarser) source, regridded onto the LR grid.

    In the LR grid's own coordinates xarray-regrid does it; from another coordinate system (lat/lon onto a
    projection, or another projection) sparse weights built with pyproj (stride_data.reproject).

    The LR grid is the HR grid coarsened by `coarsen.factor` (cell k covers HR cells k*factor .. k*factor +
    factor - 1), whether the conditioning is coarsened or regridded. Every dynamic variable comes from this
    source; only times present in both sources are kept.
    """

    variables: dict[str, str] = Field(
        default_factory=dict,
        description="Name in the LR file per dynamic variable key; unlisted keys use the registry's data_name.",
    )
    method: RegridMethod = Field(
        default="conservative",
        description="conservative: area-weighted overlap mean (lat/lon weighted by cos latitude); bilinear and "
        "nearest: interpolation at the LR cell centres.",
    )
    min_valid_fraction: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description="conservative: an LR cell needs this fraction of valid source area.",
    )
    subcells: int = Field(
        default=10,
        ge=1,
        le=64,
        description="conservative between coordinate systems (lat/lon and a projection, or two projections): "
        "each LR cell is split into at least subcells x subcells parts, each taking the source cell it falls "
        "in, so overlap areas are measured to about 1/subcells of the cell size (refined to about two parts "
        "per source cell where the source is finer).",
    )


class CoarsenConfig(StrictConfig):
    """How LR conditioning is derived from HR: conservative (area-weighted) block coarsening.

    `factor` also fixes the LR grid a separate `lr_source` is regridded onto.
    """

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
    lr_source: LRSourceConfig | None = Field(
        default=None,
        description="Take the dynamic variables from this LR source, regridded onto the LR grid, instead of "
        "coarsening them from the HR source.",
    )
    region: RegionConfig | None = Field(default=None, description="Crop the source to this region first.")
    conditioning_fill: dict[str, float] = Field(
        default_factory=dict,
        description="Value (physical units) for LR cells without a valid value (too few valid HR cells, or no "
        "valid lr_source value), per dynamic variable; without one such cells are an error, since the model is "
        "never fed NaN.",
    )
    splits: SplitsConfig
    variables_file: Path | None = Field(default=None, description="YAML overriding/adding registry entries.")
    time_chunk: int = Field(
        default=1,
        ge=1,
        description="Time steps per Zarr chunk of target and cond_dynamic; 1 lets a training sample read only "
        "the steps it uses (see stride_core.chunking).",
    )
    chunk_tile: int = Field(
        default=128,
        ge=8,
        description="Spatial Zarr chunk edge in grid cells (HR for target, LR for cond_dynamic); a field of at "
        "most two tiles' cells is one chunk.",
    )
    output: Path = Path("dataset.zarr")

    @model_validator(mode="after")
    def _lr_source_names_dynamic_variables(self) -> DataBuildConfig:
        if self.lr_source is not None:
            stray = sorted(set(self.lr_source.variables) - set(self.dynamic))
            if stray:
                raise ValueError(
                    f"lr_source.variables names {stray}, which are not dynamic variables {self.dynamic}; "
                    f"its keys are dynamic variable keys"
                )
        return self
