"""A separate LR conditioning source: opened and checked against the LR grid before any HR data is read."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from numpy.typing import NDArray

from stride_contracts.dataset import SourceFile
from stride_core.errors import InputDataError
from stride_core.variables import VariableSpec
from stride_data.config import LRSourceConfig
from stride_data.grids import SourceGrid, detect_grid
from stride_data.regrid import LRGrid, check_coverage, lr_grid, regrid
from stride_data.reproject import CrossGridRemap, same_coordinates
from stride_data.sources import check_finite_somewhere, describe_source, open_sources, select_variable


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

    @property
    def times(self) -> pd.DatetimeIndex:
        return pd.DatetimeIndex(self.dataset["time"].values)

    def name_of(self, spec: VariableSpec) -> str:
        return self.config.variables.get(spec.key, spec.data_name)

    def regridded(self, spec: VariableSpec, times: pd.DatetimeIndex) -> NDArray[np.float32]:
        """[time, y_lr, x_lr] of one dynamic variable at `times`, regridded; NaN where no valid source value."""
        array = select_variable(
            self.dataset, spec, self.path, self.name_of(spec), f"lr_source.variables.{spec.key}"
        )
        expected = ("time", self.grid.y_dim, self.grid.x_dim)
        if tuple(array.dims) != expected:
            raise InputDataError(
                f"{self.path}: variable '{array.name}' has dims {array.dims}, expected {expected}; select a "
                f"single level per variable"
            )
        array = array.sel(time=times.values)
        check_finite_somewhere(array.values, f"LR variable '{array.name}'", self.path)
        if self.remap is not None:
            values = self.remap.apply(array, self.grid)
        else:
            values = regrid(array, self.grid, self.target, self.config.method, self.config.min_valid_fraction)
        check_finite_somewhere(values, f"LR variable '{array.name}' regridded onto the LR grid", self.path)
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
    target = lr_grid(hr, factor)
    remap = None
    if same_coordinates(grid, target, path):
        check_coverage(grid, target, config.method, path)
    else:
        remap = CrossGridRemap.build(
            grid, target, config.method, config.subcells, config.min_valid_fraction, path
        )
    return LRSource(config, dataset.sortby("time"), files, path, grid, target, remap)
