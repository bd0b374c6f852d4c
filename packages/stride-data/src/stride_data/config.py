"""Configuration of `stride-data build`."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from stride_core.calendars import parse_fields
from stride_core.config import StrictConfig
from stride_core.regions import RegionConfig
from stride_data.formats import Engine


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
    duplicate_times: Literal["error", "keep_first"] = Field(
        default="error",
        description="A time stamp that occurs twice: an error naming the stamps, or keep the first field of each.",
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
    context_margin: int = Field(
        default=0,
        ge=0,
        le=64,
        description="Also store the LR predictors over the LR grid extended by this many LR cells on every "
        "side (array cond_context), regridded the same way, so the context encoder sees the large-scale "
        "circulation around a small domain; the source must cover the extended grid. Train with "
        "features.context_margin up to this value.",
    )
    time_match: Literal["exact", "nearest", "same_day"] = Field(
        default="exact",
        description="How LR stamps pair with HR ones (stride_data.time_match): exact (same stamp label), "
        "nearest (the closest LR stamp within tolerance_hours) or same_day (the LR stamp of the same day, see "
        "day_start_hour). HR steps without an LR stamp are dropped; recorded in the manifest's time_match.",
    )
    tolerance_hours: float = Field(
        default=0.0,
        ge=0.0,
        description="nearest: the largest |HR stamp - LR stamp| a pair may have, in hours (e.g. 12 for daily "
        "LR means stamped at 12:00 against HR days stamped at 00:00).",
    )
    day_start_hour: float = Field(
        default=0.0,
        ge=-24.0,
        le=48.0,
        description="same_day: the day of an HR stamp t is the date of t minus this many hours: the hour its "
        "days begin (7 for 07-07 UTC gauges stamped inside their day, 9 for HadUK 09-09), or 24 plus it when "
        "stamped at the day's end (31 for a gauge day stamped at 07:00 of the next date).",
    )
    lr_day_start_hour: float = Field(
        default=0.0,
        ge=-24.0,
        le=48.0,
        description="same_day: the same for LR stamps (0 for daily values stamped at 00:00 or 12:00 of their "
        "day, 24 for stamps at the following midnight).",
    )

    @model_validator(mode="after")
    def _time_match_fields(self) -> LRSourceConfig:
        if self.time_match != "nearest" and self.tolerance_hours:
            raise ValueError("tolerance_hours applies to time_match nearest only; set time_match: nearest")
        if self.time_match != "same_day" and (self.day_start_hour or self.lr_day_start_hour):
            raise ValueError(
                "day_start_hour and lr_day_start_hour apply to time_match same_day only; set time_match: same_day"
            )
        return self


class CoarsenConfig(StrictConfig):
    """How LR conditioning is derived from HR: conservative (area-weighted) block coarsening.

    `factor` also fixes the LR grid a separate `lr_source` is regridded onto.
    """

    factor: int = Field(default=4, ge=2, le=64)
    min_valid_fraction: float = Field(default=0.5, gt=0, le=1)


class DateRange(StrictConfig):
    """An inclusive date range, read in the calendar of the source's time axis when the dataset is built.

    Dates are ISO `YYYY-MM-DD[THH:MM[:SS]]` (a datetime works too), so `2000-02-30` is a valid end of a
    `360_day` split; a date its source's calendar lacks is an error when building.
    """

    start: datetime | str = Field(union_mode="left_to_right", description="First date (inclusive).")
    end: datetime | str = Field(union_mode="left_to_right", description="Last date (inclusive).")

    @model_validator(mode="after")
    def _ordered(self) -> DateRange:
        if self.fields(self.end) < self.fields(self.start):
            raise ValueError(f"end {self.end} is before start {self.start}")
        return self

    @staticmethod
    def fields(value: datetime | str) -> tuple[int, int, int, int, int, int]:
        """(year, month, day, hour, minute, second): dates order the same way in every calendar."""
        if isinstance(value, datetime):
            return (value.year, value.month, value.day, value.hour, value.minute, value.second)
        return parse_fields(value)


class SplitsConfig(StrictConfig):
    train: DateRange
    val: DateRange | None = None
    test: DateRange | None = None

    @model_validator(mode="after")
    def _disjoint(self) -> SplitsConfig:
        ranges = [(name, r) for name, r in self.items()]
        for index, (name_a, a) in enumerate(ranges):
            for name_b, b in ranges[index + 1 :]:
                if a.fields(a.start) <= a.fields(b.end) and a.fields(b.start) <= a.fields(a.end):
                    raise ValueError(
                        f"splits '{name_a}' and '{name_b}' overlap; date ranges must be disjoint"
                    )
        return self

    def items(self) -> list[tuple[str, DateRange]]:
        return [(name, r) for name, r in (("train", self.train), ("val", self.val), ("test", self.test)) if r]


class DataBuildConfig(StrictConfig):
    """Build dataset.zarr: HR target, LR dynamic conditioning, HR statics, splits and provenance.

    Training: an HR `source` (with the LR conditioning coarsened from it, or from an `lr_source`). Inference:
    no HR source but a `reference` training dataset, whose HR grid, statics, region and factor are reused,
    and an `lr_source` (e.g. climate-model output) regridded onto its LR grid; no target is stored.
    """

    source: SourceConfig | None = Field(
        default=None,
        description="The HR source (targets, statics); omit it and give `reference` for inference.",
    )
    reference: Path | None = Field(
        default=None,
        description="Inference: the training dataset.zarr whose HR grid, statics, variables, factor and LR "
        "regridding method are reused; the dynamic variables come from `lr_source`, every time step is in "
        "split 'test' and no target is stored (relative paths are under the working directory).",
    )
    target: list[str] = Field(
        default_factory=list,
        description="Registry keys of the HR target variables (inference: the reference's).",
    )
    dynamic: list[str] = Field(
        default_factory=list,
        description="Registry keys of LR dynamic conditioning variables (inference: the reference's).",
    )
    static: list[str] = Field(
        default_factory=list, description="Registry keys of HR static fields (inference: the reference's)."
    )
    coarsen: CoarsenConfig = CoarsenConfig()
    lr_source: LRSourceConfig | None = Field(
        default=None,
        description="Take the dynamic variables from this LR source, regridded onto the LR grid, instead of "
        "coarsening them from the HR source (except those in coarsened_dynamic).",
    )
    coarsened_dynamic: list[str] = Field(
        default_factory=list,
        description="With an lr_source: dynamic variables coarsened from the HR source (conservative block "
        "mean, as without lr_source) instead of read from lr_source, e.g. a perfect-prognosis stand-in for a "
        "large-scale field the LR source lacks; the other dynamic variables still come from lr_source. "
        "Needs lr_source.context_margin 0 (the HR source does not cover a context region).",
    )
    region: RegionConfig | None = Field(default=None, description="Crop the source to this region first.")
    conditioning_fill: dict[str, float] = Field(
        default_factory=dict,
        description="Value (physical units) for LR cells without a valid value (too few valid HR cells, or no "
        "valid lr_source value), per dynamic variable; without one such cells are an error, since the model is "
        "never fed NaN.",
    )
    splits: SplitsConfig | None = Field(
        default=None, description="Date ranges of train/val/test (training; inference uses every time step)."
    )
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
    def _training_or_inference(self) -> DataBuildConfig:
        if (self.source is None) == (self.reference is None):
            raise ValueError(
                "give either source (an HR source: a training dataset) or reference (a training dataset.zarr, "
                "with lr_source: an inference dataset without target)"
            )
        if self.reference is not None:
            if self.lr_source is None:
                raise ValueError(
                    "an inference build (reference) needs lr_source, the LR-only input to downscale"
                )
            if self.splits is not None:
                raise ValueError(
                    "an inference build (reference) puts every time step in split 'test'; drop splits"
                )
            if self.coarsened_dynamic:
                raise ValueError(
                    "an inference build reads every dynamic variable from lr_source; drop coarsened_dynamic"
                )
            if self.region is not None or "coarsen" in self.model_fields_set:
                raise ValueError(
                    "an inference build takes region and coarsen.factor from the reference; drop them"
                )
            return self
        for name in ("target", "dynamic"):
            if not getattr(self, name):
                raise ValueError(f"{name}: give at least one variable")
        if self.coarsened_dynamic:
            self._check_coarsened_dynamic()
        if self.splits is None:
            raise ValueError("splits: give at least the train date range")
        return self

    def _check_coarsened_dynamic(self) -> None:
        if self.lr_source is None:
            raise ValueError(
                "coarsened_dynamic applies with an lr_source only (without one every dynamic variable is "
                "coarsened from the HR source); drop it"
            )
        stray = sorted(set(self.coarsened_dynamic) - set(self.dynamic))
        if stray:
            raise ValueError(
                f"coarsened_dynamic names {stray}, which are not dynamic variables {self.dynamic}"
            )
        both = sorted(set(self.coarsened_dynamic) & set(self.lr_source.variables))
        if both:
            raise ValueError(f"{both} are in both coarsened_dynamic and lr_source.variables; keep one")
        if set(self.coarsened_dynamic) == set(self.dynamic):
            raise ValueError(
                "coarsened_dynamic names every dynamic variable: drop lr_source, or leave it a variable"
            )
        if self.lr_source.context_margin:
            raise ValueError(
                "coarsened_dynamic needs lr_source.context_margin 0: the HR source does not cover the LR "
                "context region"
            )

    def lr_source_dynamic(self) -> list[str]:
        """The dynamic variables read from lr_source (every one not in coarsened_dynamic), in order."""
        if self.lr_source is None:
            return []
        return [key for key in self.dynamic if key not in self.coarsened_dynamic]

    @model_validator(mode="after")
    def _lr_source_names_dynamic_variables(self) -> DataBuildConfig:
        # Inference without `dynamic` checks the names against the reference's variables when building.
        if self.lr_source is not None and self.dynamic:
            stray = sorted(set(self.lr_source.variables) - set(self.dynamic))
            if stray:
                raise ValueError(
                    f"lr_source.variables names {stray}, which are not dynamic variables {self.dynamic}; "
                    f"its keys are dynamic variable keys"
                )
        return self
