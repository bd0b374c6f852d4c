"""`region:` at generation: part of a built dataset's grid, chosen as stride-data chooses one, aligned to its LR grid.

The region is resolved by stride_core.regions (a named region, centre + size, or an index box on the
dataset's HR grid), its start snapped down onto the LR grid, and its LR cells checked to be the ones under
its HR cells (the LR cell centres are the block means of the HR ones) before anything is sampled. Nothing
is rebuilt: generation reads the region's boxes from the dataset (stride_core.splits.load_split and the
adapter's fixed box, whose context window holds the real field around the region).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from stride_contracts import DatasetManifest
from stride_contracts.dataset import DATASET_ARRAYS, GridInfo
from stride_core.artifacts import open_zarr_artifact
from stride_core.errors import ArtifactError
from stride_core.progress import get_logger
from stride_core.regions import RegionConfig, region_slices

log = get_logger("stride-generate")

# HR coordinate -> (its LR counterpart, the HR dims it runs along).
_PAIRS = {"lat": "lat_lr", "lon": "lon_lr", "y": "y_lr", "x": "x_lr"}


@dataclass(frozen=True)
class DatasetGrid:
    """A dataset's 2-D cell-centre lat/lon on its HR grid (what stride_core.regions needs)."""

    lat: NDArray[np.float64]
    lon: NDArray[np.float64]


@dataclass(frozen=True)
class GenerationRegion:
    """HR rows and columns of the region (starts and sizes multiples of the factor) and its description."""

    rows: slice
    cols: slice
    factor: int
    description: str

    @property
    def hr(self) -> tuple[slice, slice]:
        return self.rows, self.cols

    @property
    def hr_shape(self) -> tuple[int, int]:
        return self.rows.stop - self.rows.start, self.cols.stop - self.cols.start

    def grid(self, full: GridInfo) -> GridInfo:
        """The dataset's grid narrowed to the region."""
        height, width = self.hr_shape
        where = self.description if full.region is None else f"{full.region}; {self.description}"
        return full.model_copy(
            update={
                "hr_shape": (height, width),
                "lr_shape": (height // self.factor, width // self.factor),
                "region": where,
            }
        )


def _latlon(dataset: Any, path: Path) -> DatasetGrid:
    if "lat" not in dataset.coords or "lon" not in dataset.coords:
        raise ArtifactError(f"{path}: no lat/lon coordinates, so region cannot be placed; use region.box")
    lat, lon = dataset["lat"].values.astype(np.float64), dataset["lon"].values.astype(np.float64)
    if lat.ndim == 1:  # a regular lat/lon grid: lat(y), lon(x)
        lat, lon = np.meshgrid(lat, lon, indexing="ij")
    return DatasetGrid(lat=lat, lon=lon)


def select_region(region: RegionConfig, path: Path) -> GenerationRegion:
    """The region on the dataset at `path`; outside its grid: InputDataError naming the region (exit 2)."""
    dataset, manifest = open_zarr_artifact(path, DatasetManifest, DATASET_ARRAYS)
    factor = manifest.grid.factor
    if region.box is not None:
        height, width = manifest.grid.hr_shape
        lat = np.zeros((height, width))
        grid = DatasetGrid(lat=lat, lon=lat)  # an index box needs only the grid's shape
    else:
        grid = _latlon(dataset, path)
    rows, cols = region_slices(region, grid, factor, path)
    # Snap the start onto the LR grid (stride-data crops before coarsening; here the LR grid is fixed).
    snapped = (
        slice(rows.start - rows.start % factor, rows.stop - rows.start % factor),
        slice(cols.start - cols.start % factor, cols.stop - cols.start % factor),
    )
    if snapped != (rows, cols):
        log.info(
            "region %s: rows %d:%d, cols %d:%d moved onto the LR grid (factor %d): rows %d:%d, cols %d:%d",
            region.describe(), rows.start, rows.stop, cols.start, cols.stop, factor,
            snapped[0].start, snapped[0].stop, snapped[1].start, snapped[1].stop,
        )  # fmt: skip
    chosen = GenerationRegion(snapped[0], snapped[1], factor, region.describe())
    check_alignment(dataset, chosen, path)
    return chosen


def check_alignment(dataset: Any, region: GenerationRegion, path: Path) -> None:
    """Assert the region's LR cells lie under its HR cells: each LR coordinate is the mean of its HR block.

    Tolerance: a quarter of the HR spacing (a cell shifted by one HR cell or more fails; 2-D lat/lon of a
    projected grid are not exact block means, so they are held to the same quarter-cell).
    """
    f = region.factor
    lr_rows = slice(region.rows.start // f, region.rows.stop // f)
    lr_cols = slice(region.cols.start // f, region.cols.stop // f)
    for hr_name, lr_name in _PAIRS.items():
        if hr_name not in dataset.coords or lr_name not in dataset.coords:
            continue
        hr, lr = dataset[hr_name], dataset[lr_name]
        hr_sel = {d: (region.rows if d == "y" else region.cols) for d in hr.dims}
        lr_sel = {d: (lr_rows if d == "y_lr" else lr_cols) for d in lr.dims}
        fine = hr.isel(hr_sel).values.astype(np.float64)
        coarse = lr.isel(lr_sel).values.astype(np.float64)
        shape = [n // f for n in fine.shape]
        blocks = fine.reshape([v for n in shape for v in (n, f)]).mean(
            axis=tuple(range(1, 2 * len(shape), 2))
        )
        spacing = (
            np.nanmedian(np.abs(np.diff(fine, axis=-1 if fine.ndim == 1 else 0))) if fine.size > 1 else 0.0
        )
        if fine.ndim == 2:
            spacing = max(spacing, float(np.nanmedian(np.abs(np.diff(fine, axis=1)))))
        if coarse.shape != blocks.shape or not np.allclose(coarse, blocks, atol=0.25 * spacing + 1e-9):
            raise ArtifactError(
                f"{path}: region {region.description}: the LR coordinate {lr_name} is not the block mean of {hr_name} "
                f"(factor {f}): HR and LR grids are misaligned; rebuild the dataset with stride-data"
            )
