"""Contract for `dataset.zarr`: HR targets, LR dynamic conditioning, HR statics, splits, provenance."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field, model_validator

from stride_contracts.base import ArtifactHeader, StrictModel

DATASET_ARRAYS = ("target", "cond_dynamic", "cond_static", "split")
"""Arrays a dataset store must hold (dims: target [time, target_var, y, x],
cond_dynamic [time, dynamic_var, y_lr, x_lr], cond_static [static_var, y, x], split [time])."""

SPLIT_CODES = {"train": 0, "val": 1, "test": 2}
"""Integer code of each split in the `split` array; -1 marks times outside every split."""


class VariableRef(StrictModel):
    """A variable as stored in an artifact: canonical key, units and where it came from."""

    name: str = Field(description="Canonical variable key (registry key), e.g. 't2m'.")
    units: str
    long_name: str = ""
    source_name: str | None = Field(default=None, description="Name in the source file.")


class SplitRange(StrictModel):
    """An inclusive date range."""

    start: datetime
    end: datetime

    @model_validator(mode="after")
    def _ordered(self) -> SplitRange:
        if self.end < self.start:
            raise ValueError(f"split end {self.end} is before start {self.start}")
        return self


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
    role: Literal["hr", "lr"] = Field(
        default="hr",
        description="'hr': the HR source (targets, statics, and LR conditioning when coarsened); 'lr': a "
        "separate LR source regridded onto the LR grid (GridInfo.lr_method 'regridded').",
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
    n_times: int = Field(ge=1)
    sources: list[SourceFile] = Field(min_length=1)

    @model_validator(mode="after")
    def _needs_train(self) -> DatasetManifest:
        if "train" not in self.splits:
            raise ValueError("splits must include 'train'")
        return self
