"""Regions: an index box, a named lat/lon box, or a centre + size, as HR row/col slices aligned to the factor.

stride-data crops a source to one before coarsening; stride-generate selects one from a built dataset.
`region_slices` needs only the grid's 2-D cell-centre `lat` and `lon` (any object with those arrays).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Protocol

import numpy as np
import yaml
from numpy.typing import NDArray
from pydantic import Field, model_validator

from stride_core.config import StrictConfig, load_yaml_mapping
from stride_core.errors import ConfigError, InputDataError


class LatLonGrid(Protocol):
    """A grid's 2-D cell-centre latitude and longitude [rows, cols] (stride_data's SourceGrid is one)."""

    @property
    def lat(self) -> NDArray[np.float64]: ...

    @property
    def lon(self) -> NDArray[np.float64]: ...


class IndexBox(StrictConfig):
    """Rows and columns of the HR grid, half-open: [y0, y1) x [x0, x1)."""

    y0: int = Field(ge=0)
    y1: int
    x0: int = Field(ge=0)
    x1: int

    @model_validator(mode="after")
    def _ordered(self) -> IndexBox:
        if self.y1 <= self.y0 or self.x1 <= self.x0:
            raise ValueError(f"empty box rows [{self.y0}, {self.y1}) cols [{self.x0}, {self.x1})")
        return self


class LatLonBox(StrictConfig):
    lat: tuple[float, float]
    lon: tuple[float, float]


class RegionConfig(StrictConfig):
    """Exactly one of: `name` (from `regions_file` or the shipped regions), `center` + `size`, or `box`."""

    name: str | None = None
    regions_file: Path | None = None
    center: tuple[float, float] | None = Field(default=None, description="(lat, lon) of the region centre.")
    size: tuple[int, int] | None = Field(default=None, description="(rows, cols) in HR cells.")
    box: IndexBox | None = None

    @model_validator(mode="after")
    def _one_way(self) -> RegionConfig:
        ways = [self.name is not None, self.center is not None or self.size is not None, self.box is not None]
        if sum(ways) != 1:
            raise ValueError("give exactly one of name, center + size, or box")
        if (self.center is None) != (self.size is None):
            raise ValueError("center and size go together: set both or neither")
        return self

    def describe(self) -> str:
        if self.name:
            return self.name
        if self.center and self.size:
            return f"center {self.center} size {self.size}"
        assert self.box is not None
        return f"rows {self.box.y0}:{self.box.y1} cols {self.box.x0}:{self.box.x1}"


def named_regions(user_file: Path | None) -> dict[str, LatLonBox]:
    shipped = yaml.safe_load(resources.files("stride_core").joinpath("regions.yaml").read_text())
    entries = {**shipped, **(load_yaml_mapping(user_file) if user_file else {})}
    return {name: LatLonBox.model_validate(value) for name, value in entries.items()}


def region_slices(region: RegionConfig, grid: LatLonGrid, factor: int, path: Path) -> tuple[slice, slice]:
    """HR row/column slices of the region, trimmed so both sides are multiples of the coarsening factor."""
    height, width = grid.lat.shape
    if region.box is not None:
        rows, cols = slice(region.box.y0, region.box.y1), slice(region.box.x0, region.box.x1)
    elif region.center is not None and region.size is not None:
        distance = (grid.lat - region.center[0]) ** 2 + (
            (grid.lon - region.center[1]) * np.cos(np.deg2rad(region.center[0]))
        ) ** 2
        row, col = np.unravel_index(int(np.argmin(distance)), distance.shape)
        rows = slice(int(row) - region.size[0] // 2, int(row) - region.size[0] // 2 + region.size[0])
        cols = slice(int(col) - region.size[1] // 2, int(col) - region.size[1] // 2 + region.size[1])
    else:
        boxes = named_regions(region.regions_file)
        if region.name not in boxes:
            raise ConfigError(
                f"region '{region.name}' is not defined (known: {', '.join(sorted(boxes))}); "
                f"add it to a regions_file"
            )
        bounds = boxes[region.name]
        inside = (
            (grid.lat >= min(bounds.lat))
            & (grid.lat <= max(bounds.lat))
            & (grid.lon >= min(bounds.lon))
            & (grid.lon <= max(bounds.lon))
        )
        if not inside.any():
            raise InputDataError(
                f"{path}: region '{region.name}' {bounds.lat}N {bounds.lon}E lies outside the grid"
            )
        row_index, col_index = np.flatnonzero(inside.any(axis=1)), np.flatnonzero(inside.any(axis=0))
        rows, cols = slice(row_index[0], row_index[-1] + 1), slice(col_index[0], col_index[-1] + 1)
    if rows.start < 0 or cols.start < 0 or rows.stop > height or cols.stop > width:
        raise InputDataError(
            f"{path}: region {region.describe()} (rows {rows.start}:{rows.stop}, cols {cols.start}:{cols.stop}) "
            f"extends beyond the {height}x{width} grid; move or shrink it"
        )
    n_rows = (rows.stop - rows.start) // factor * factor
    n_cols = (cols.stop - cols.start) // factor * factor
    if n_rows == 0 or n_cols == 0:
        raise InputDataError(
            f"{path}: region {region.describe()} is smaller than one LR cell (factor {factor}); enlarge the region "
            f"to at least {factor}x{factor} HR cells or choose a smaller coarsen.factor"
        )
    return slice(rows.start, rows.start + n_rows), slice(cols.start, cols.start + n_cols)
