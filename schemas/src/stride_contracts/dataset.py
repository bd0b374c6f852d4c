"""Contract for `dataset.zarr`: HR targets, LR dynamic conditioning, HR statics, splits, provenance."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field, model_validator

from stride_contracts.base import ArtifactHeader, StrictModel

DATASET_ARRAYS = ("target", "cond_dynamic", "cond_static", "split")
"""Arrays a dataset store must hold (dims: target [time, target_var, y, x],
cond_dynamic [time, dynamic_var, y_lr, x_lr], cond_static [static_var, y, x], split [time])."""

SPLIT_CODES = {"train": 0, "val": 1, "test": 2}
"""Integer code of each split in the `split` array; -1 marks times outside every split."""

CONTEXT_ARRAY = "cond_context"
"""Optional array [time, dynamic_var, y_ctx, x_ctx]: the LR predictors over the LR grid extended by
`GridInfo.context_margin` LR cells on every side (coordinates lat_ctx/lon_ctx, or y_ctx/x_ctx when projected)."""

INFERENCE_SPLIT = "test"
"""An inference dataset (no target) labels every time step with this split."""


class VariableRef(StrictModel):
    """A variable as stored in an artifact: canonical key, units and where it came from."""

    name: str = Field(description="Canonical variable key (registry key), e.g. 't2m'.")
    units: str
    long_name: str = ""
    source_name: str | None = Field(default=None, description="Name in the source file.")
    source_units: str | None = Field(
        default=None, description="Units in the source file when they were converted to `units` on reading."
    )
    conversion: str | None = Field(
        default=None,
        description="The conversion applied on reading, e.g. 'kg m-2 s-1 -> mm day-1: x 86400 (liquid water "
        "equivalent: 1 kg m-2 = 1 mm)'; None when the source had the registry's units.",
    )


def _date_fields(value: datetime | str) -> tuple[int, ...]:
    """(year, month, day, hour, minute, second) of a datetime or an ISO date string of any calendar."""
    if isinstance(value, datetime):
        return (value.year, value.month, value.day, value.hour, value.minute, value.second)
    head, _, clock = value.replace(" ", "T").partition("T")
    year, month, day = (int(part) for part in head.split("-")[-3:])
    hour, minute, second = ([int(float(p)) for p in clock.split(":")] + [0, 0, 0])[:3] if clock else (0, 0, 0)
    return (-year if head.startswith("-") else year, month, day, hour, minute, second)


class SplitRange(StrictModel):
    """An inclusive date range, in the dataset's calendar (`DatasetManifest.calendar`).

    A datetime where the standard calendar has the date; an ISO string `YYYY-MM-DDTHH:MM:SS` for dates it lacks
    (2000-02-30 of a `360_day` axis).
    """

    start: datetime | str = Field(union_mode="left_to_right")
    end: datetime | str = Field(union_mode="left_to_right")

    @model_validator(mode="after")
    def _ordered(self) -> SplitRange:
        try:
            start, end = _date_fields(self.start), _date_fields(self.end)
        except ValueError:
            raise ValueError(
                f"split dates must be ISO dates YYYY-MM-DD[THH:MM:SS], got {self.start}, {self.end}"
            ) from None
        if end < start:
            raise ValueError(f"split end {self.end} is before start {self.start}")
        return self


class TimeMatch(StrictModel):
    """How the LR source's time stamps were paired with the HR ones (stride_data.time_match)."""

    mode: Literal["exact", "nearest", "same_day"] = Field(
        description="exact: identical stamps; nearest: the closest LR stamp within tolerance_hours; same_day: "
        "the LR stamp of the same day, days shifted by day_start_hour (HR) and lr_day_start_hour (LR)."
    )
    tolerance_hours: float = Field(default=0.0, ge=0)
    day_start_hour: float = 0.0
    lr_day_start_hour: float = 0.0
    lr_calendar: str = Field(default="standard", description="Calendar of the LR source's time axis.")
    n_matched: int = Field(ge=0, description="HR time steps that got an LR stamp (the others were dropped).")
    n_lr_unused: int = Field(default=0, ge=0, description="LR stamps no HR time step was paired with.")
    max_offset_hours: float | None = Field(
        default=None, description="Largest |HR stamp - LR stamp| among the pairs; None across calendars."
    )


class GridInfo(StrictModel):
    """HR and LR grids and how they relate.

    `latlon`: regular latitude/longitude axes (coordinates `lat(y)`, `lon(x)` in degrees).
    `projected`: `x(x)`, `y(y)` in metres of the projection `crs`, with cell-centre `lat(y, x)`, `lon(y, x)`.
    """

    kind: Literal["latlon", "projected"] = "latlon"
    crs: str | None = Field(default=None, description="Projection as PROJ string or WKT (projected grids).")
    hr_shape: tuple[int, int]
    lr_shape: tuple[int, int]
    factor: int = Field(ge=1, description="HR cells per LR cell along each axis.")
    lr_method: Literal["conservative_coarsening", "regridded"] = Field(
        default="conservative_coarsening",
        description="How LR conditioning was made: 'conservative_coarsening' of the HR source (area-weighted "
        "factor x factor block means), or 'regridded' from a separate LR source onto the LR grid.",
    )
    lr_regrid_method: Literal["conservative", "bilinear", "nearest"] | None = Field(
        default=None, description="The regridding method when lr_method is 'regridded' (None otherwise)."
    )
    lat_descending: bool = Field(description="Whether row 0 is the northernmost row.")
    region: str | None = Field(default=None, description="The region the source was cropped to, if any.")
    context_margin: int = Field(
        default=0,
        ge=0,
        description="LR cells by which the stored LR context (array cond_context) extends past the LR grid on "
        "every side; 0: no stored context.",
    )

    @model_validator(mode="after")
    def _aligned(self) -> GridInfo:
        if self.kind == "projected" and not self.crs:
            raise ValueError("a projected grid needs its crs")
        if (self.lr_method == "regridded") != (self.lr_regrid_method is not None):
            raise ValueError("lr_regrid_method is set exactly when lr_method is 'regridded'")
        expected = (self.lr_shape[0] * self.factor, self.lr_shape[1] * self.factor)
        if tuple(self.hr_shape) != expected:
            raise ValueError(
                f"hr_shape {self.hr_shape} is not factor {self.factor} x lr_shape {self.lr_shape}"
            )
        return self


class SourceFile(StrictModel):
    """Provenance of one input file."""

    path: str
    size_bytes: int
    sha256: str
    variables: list[str]
    role: Literal["hr", "lr", "reference"] = Field(
        default="hr",
        description="'hr': the HR source (targets, statics, and LR conditioning when coarsened); 'lr': a "
        "separate LR source regridded onto the LR grid (GridInfo.lr_method 'regridded'); 'reference': the "
        "training dataset an inference dataset took its HR grid and statics from.",
    )


class DatasetManifest(ArtifactHeader):
    """Root attribute `stride` of `dataset.zarr`."""

    contract: Literal["stride.dataset"] = "stride.dataset"
    version: Literal[1] = 1
    target: list[VariableRef] = Field(min_length=1)
    dynamic: list[VariableRef] = Field(min_length=1)
    static: list[VariableRef] = Field(default_factory=list)
    grid: GridInfo
    splits: dict[Literal["train", "val", "test"], SplitRange]
    time_step_hours: float = Field(gt=0)
    calendar: str = Field(
        default="standard",
        description="CF calendar of the time axis (standard, proleptic_gregorian, noleap, all_leap, 360_day, "
        "julian); the Zarr `time` coordinate carries it too. Split dates are dates of this calendar.",
    )
    time_match: TimeMatch | None = Field(
        default=None,
        description="How LR stamps were paired with HR ones (None: coarsened from the HR source).",
    )
    n_times: int = Field(ge=1)
    sources: list[SourceFile] = Field(min_length=1)
    has_target: bool = Field(
        default=True,
        description="False for an inference dataset built from an LR-only source: the `target` array is all "
        "NaN (no truth), and every time step is in the split INFERENCE_SPLIT ('test').",
    )
    valid_counts: dict[str, dict[str, int]] = Field(
        default_factory=dict,
        description="Valid (finite) values per '<role>.<variable>' (target, dynamic) and split, and per "
        "'static.<variable>' under 'all', as built: a reader that counts them (stride-stats does) detects a "
        "damaged store, since a deleted or unreadable chunk reads as NaN.",
    )
    registry: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="The variable registry entries (stride_core.variables.VariableSpec fields) of every "
        "target, dynamic and static variable, by key, as the dataset was built: later tools read units, "
        "positive-definiteness and colour maps from here without a variables_file.",
    )

    @model_validator(mode="after")
    def _needs_train(self) -> DatasetManifest:
        if self.has_target and "train" not in self.splits:
            raise ValueError("splits must include 'train'")
        if not self.has_target and set(self.splits) != {INFERENCE_SPLIT}:
            raise ValueError(
                f"an inference dataset (has_target false) has exactly the split '{INFERENCE_SPLIT}'"
            )
        return self
