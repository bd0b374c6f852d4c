"""Load one split of a dataset.zarr into memory as contract-A arrays (physical units, before transforms)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from stride_contracts import DatasetManifest
from stride_contracts.dataset import DATASET_ARRAYS, SPLIT_CODES
from stride_core.artifacts import load_variable, open_zarr_artifact
from stride_core.calendars import TimeIndex, time_index
from stride_core.errors import ArtifactError

SPATIAL_COORDS = ("lat", "lon", "lat_lr", "lon_lr", "y", "x", "y_lr", "x_lr")


@dataclass(frozen=True)
class SplitArrays:
    """One split's arrays: target [time, C_out, H, W], cond_dynamic [time, C_dyn, h, w], cond_static [C_s, H, W]."""

    manifest: DatasetManifest
    times: TimeIndex
    """datetime64 for standard calendars, cftime dates (CFTimeIndex) for the others (stride_core.calendars)."""
    time_index: NDArray[np.int64]
    """Positions of these times on the store's time axis."""
    target: NDArray[np.float32]
    cond_dynamic: NDArray[np.float32]
    cond_static: NDArray[np.float32]
    coords: dict[str, tuple[tuple[str, ...], NDArray[np.float64]]]
    """Spatial coordinates by name, with their dims: lat/lon (1-D or 2-D), x/y when projected, and the LR ones."""


def load_split(
    path: Path,
    split: str,
    *,
    every: int = 1,
    limit: int | None = None,
    among: NDArray[np.int64] | None = None,
    region: tuple[slice, slice] | None = None,
) -> SplitArrays:
    """Read the time steps of `split` (every `every`-th, at most `limit`), checking shapes against the manifest.

    `among` restricts the choice to these store time indices (e.g. the anchors that have a full window of
    stacked steps) before `every` and `limit` apply. `region`: only these HR rows and columns (starts and
    sizes multiples of the factor; the LR cells under them are read), before anything is loaded.
    """
    dataset, manifest = open_zarr_artifact(path, DatasetManifest, DATASET_ARRAYS)
    codes = load_variable(dataset, "split", path).values
    index = np.flatnonzero(codes == SPLIT_CODES[split])
    if among is not None:
        index = np.intersect1d(index, among)
    index = index[::every][:limit]
    if index.size == 0:
        raise ArtifactError(
            f"{path}: split '{split}' has no time steps; rebuild the dataset with splits.{split}"
        )
    subset = dataset.isel(time=index)
    grid = manifest.grid
    hr_shape, lr_shape = tuple(grid.hr_shape), tuple(grid.lr_shape)
    if region is not None:
        rows, cols = region
        f = grid.factor
        assert all(s.start % f == 0 and (s.stop - s.start) % f == 0 for s in region), "region off the LR grid"
        subset = subset.isel(
            y=rows,
            x=cols,
            y_lr=slice(rows.start // f, rows.stop // f),
            x_lr=slice(cols.start // f, cols.stop // f),
        )
        hr_shape = (rows.stop - rows.start, cols.stop - cols.start)
        lr_shape = (hr_shape[0] // f, hr_shape[1] // f)
    arrays = SplitArrays(
        manifest=manifest,
        times=time_index(subset["time"]),
        time_index=index.astype(np.int64),
        target=load_variable(subset, "target", path).values.astype(np.float32),
        cond_dynamic=load_variable(subset, "cond_dynamic", path).values.astype(np.float32),
        cond_static=load_variable(subset, "cond_static", path).values.astype(np.float32),
        coords={
            name: (tuple(map(str, subset[name].dims)), subset[name].values)
            for name in SPATIAL_COORDS
            if name in subset.coords
        },
    )
    checks = {
        "target": (arrays.target.shape[1:], (len(manifest.target), *hr_shape)),
        "cond_dynamic": (arrays.cond_dynamic.shape[1:], (len(manifest.dynamic), *lr_shape)),
        "cond_static": (arrays.cond_static.shape, (len(manifest.static), *hr_shape)),
    }
    for name, (actual, expected) in checks.items():
        if tuple(actual) != tuple(expected):
            raise ArtifactError(
                f"{path}: array '{name}' has shape {actual}, the manifest implies {expected}; re-create the store"
            )
    if not np.isfinite(arrays.cond_dynamic).all() or not np.isfinite(arrays.cond_static).all():
        raise ArtifactError(
            f"{path}: conditioning contains NaN in split '{split}'; the model is never fed NaN"
        )
    return arrays
