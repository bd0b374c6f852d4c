"""A separate LR conditioning source: opened and checked against the LR grid before any HR data is read."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import xarray as xr
from numpy.typing import NDArray

from stride_contracts.dataset import SourceFile
from stride_core.calendars import TimeIndex, date_key
from stride_core.errors import InputDataError
from stride_core.units import Conversion
from stride_core.variables import VariableSpec
from stride_data.config import LRSourceConfig
from stride_data.grids import SourceGrid, detect_grid
from stride_data.lr_context import extended
from stride_data.regrid import LRGrid, check_coverage, lr_grid, regrid
from stride_data.reproject import CrossGridRemap, same_coordinates
from stride_data.sources import (
    check_finite_somewhere,
    describe_source,
    open_sources,
    select_variable,
    source_times,
    unique_times,
    unit_conversion,
)
from stride_data.time_match import Pairing, pair_times


@dataclass
class LRSource:
    """An opened LR source whose grid is known to cover the LR grid."""

    config: LRSourceConfig
    dataset: xr.Dataset
    files: list[Path]
    path: Path
    grid: SourceGrid
    target: LRGrid
    remap: CrossGridRemap | None
    """Sparse weights when the source is in another coordinate system than the LR grid; else xarray-regrid."""
    conversions: dict[str, Conversion] = field(default_factory=dict)
    """Unit conversions applied, by variable key (filled by `regridded`)."""

    @property
    def margin(self) -> int:
        """LR cells the regridding target extends past the LR grid on every side (the context region)."""
        return self.config.context_margin

    pairing: Pairing | None = None
    """How HR time steps pair with LR stamps (set by `align`); None: the times asked for are LR stamps."""
    lr_of: dict[str, int] = field(default_factory=dict)
    """Position on the LR axis by date_key of the time asked for (HR steps after `align`, else LR stamps)."""

    @property
    def times(self) -> TimeIndex:
        return source_times(self.dataset, self.path)

    def align(self, hr_times: TimeIndex, hr_path: Path) -> TimeIndex:
        """Pair the HR time steps with LR stamps by `time_match`; the HR steps kept (regridded() then takes
        them and reads each one's LR stamp)."""
        self.pairing = pair_times(hr_times, self.times, self.config, hr_path, self.path)
        kept = hr_times[self.pairing.hr_keep]
        self.lr_of = {date_key(t): int(p) for t, p in zip(kept, self.pairing.lr_position, strict=True)}
        return hr_times[self.pairing.hr_keep]

    def positions(self, times: TimeIndex) -> NDArray[np.int64]:
        """Positions on the LR axis of the LR stamps of `times` (HR steps after `align`, else LR stamps)."""
        if not self.lr_of:
            self.lr_of = {date_key(t): i for i, t in enumerate(self.times)}
        lookup = self.lr_of
        missing = [t for t in times if date_key(t) not in lookup]
        if missing:
            raise InputDataError(f"{self.path}: no LR stamp for {date_key(missing[0])}")
        return np.array([lookup[date_key(t)] for t in times], dtype=np.int64)

    def name_of(self, spec: VariableSpec) -> str:
        return self.config.variables.get(spec.key, spec.data_name)

    def regridded(self, spec: VariableSpec, times: TimeIndex) -> NDArray[np.float32]:
        """[time, y, x] of one dynamic variable at `times` on the target grid (the LR grid, extended by
        `margin` cells when there is a context region), in the registry's units; NaN where no valid value.

        Units are converted after regridding: every method is a weighted mean with weights summing to one,
        which commutes with the affine conversions of stride_core.units.
        """
        array = select_variable(
            self.dataset, spec, self.path, self.name_of(spec), f"lr_source.variables.{spec.key}"
        )
        expected = ("time", self.grid.y_dim, self.grid.x_dim)
        if tuple(array.dims) != expected:
            raise InputDataError(
                f"{self.path}: variable '{array.name}' has dims {array.dims}, expected {expected}; select a "
                f"single level per variable"
            )
        # Each distinct LR stamp is regridded once; HR steps sharing one (same_day, nearest) repeat its field.
        unique, inverse = np.unique(self.positions(times), return_inverse=True)
        array = array.isel(time=unique)
        check_finite_somewhere(array.values, f"LR variable '{array.name}'", self.path)
        if self.remap is not None:
            values = self.remap.apply(array, self.grid)
        else:
            values = regrid(array, self.grid, self.target, self.config.method, self.config.min_valid_fraction)
        check_finite_somewhere(values, f"LR variable '{array.name}' regridded onto the LR grid", self.path)
        values = values[inverse]
        conversion = unit_conversion(array, spec, self.path)
        if conversion is not None:
            self.conversions[spec.key] = conversion
            values = conversion.apply(values)
        return values

    def provenance(self, specs: list[VariableSpec]) -> list[SourceFile]:
        names = sorted({self.name_of(spec) for spec in specs})
        return [describe_source(file, names, role="lr") for file in self.files]


def open_lr_source(config: LRSourceConfig, hr: SourceGrid, factor: int) -> LRSource:
    """Open the LR source and check its grid against the LR grid (the cropped HR grid coarsened by factor)."""
    dataset, files, path = open_sources(config.files, config.engine, config.min_lead_hours)
    if "time" not in dataset.dims:
        raise InputDataError(f"{path}: LR source without a 'time' dimension (dims: {list(dataset.dims)})")
    grid = detect_grid(dataset, path)
    if min(len(grid.y), len(grid.x)) < 2:
        raise InputDataError(
            f"{path}: LR source grid is {len(grid.y)}x{len(grid.x)}; regridding needs at least 2 points per axis"
        )
    target = extended(lr_grid(hr, factor), config.context_margin, path)
    remap = None
    if same_coordinates(grid, target, path):
        check_coverage(grid, target, config.method, path)
    else:
        remap = CrossGridRemap.build(
            grid, target, config.method, config.subcells, config.min_valid_fraction, path
        )
    dataset = unique_times(dataset.sortby("time"), path, config.duplicate_times, "lr_source.duplicate_times")
    return LRSource(config, dataset, files, path, grid, target, remap)
