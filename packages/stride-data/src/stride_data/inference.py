"""Inference datasets: the HR grid, statics and variables of a training dataset, for LR inputs without truth.

A model trained on one dataset downscales LR fields of another source (a climate projection) only if they
arrive exactly as in training: on the same LR grid, regridded the same way, beside the same statics, with
the same variables in the same units. `open_reference` reads all of that from the training dataset.zarr, so
an inference build needs nothing but that store and the LR file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from stride_contracts.dataset import DATASET_ARRAYS, DatasetManifest
from stride_core.artifacts import load_variable, open_zarr_artifact
from stride_core.errors import ConfigError
from stride_data.config import DataBuildConfig, RegridMethod
from stride_data.grids import SourceGrid


@dataclass(frozen=True)
class Reference:
    """What an inference dataset takes from its training dataset."""

    path: Path
    manifest: DatasetManifest
    grid: SourceGrid
    """The (cropped) HR grid of the training dataset."""
    statics: NDArray[np.float32]
    """[static_var, y, x] in physical units."""

    @property
    def factor(self) -> int:
        return self.manifest.grid.factor

    @property
    def regrid_method(self) -> RegridMethod:
        """How the training dataset made its LR fields: its regridding method, or conservative for a coarsened
        one (conservative regridding onto the LR cells is the area-weighted block mean coarsening computes)."""
        method = self.manifest.grid.lr_regrid_method
        return "conservative" if method is None else method


def open_reference(path: Path) -> Reference:
    """The training dataset's manifest, HR grid (as a SourceGrid) and statics."""
    dataset, manifest = open_zarr_artifact(path, DatasetManifest, DATASET_ARRAYS)
    if not manifest.has_target:
        raise ConfigError(
            f"reference {path} is itself an inference dataset (no target); give the training dataset.zarr"
        )
    info = manifest.grid
    if info.kind == "latlon":
        y, x = dataset["lat"].values.astype(np.float64), dataset["lon"].values.astype(np.float64)
        lat, lon = np.meshgrid(y, x, indexing="ij")
        grid = SourceGrid("latlon", "lat", "lon", y, x, lat, lon, None)
    else:
        grid = SourceGrid(
            "projected",
            "y",
            "x",
            dataset["y"].values.astype(np.float64),
            dataset["x"].values.astype(np.float64),
            dataset["lat"].values.astype(np.float64),
            dataset["lon"].values.astype(np.float64),
            info.crs,
        )
    statics = load_variable(dataset, "cond_static", path).values.astype(np.float32)
    return Reference(Path(path), manifest, grid, statics)


def check_variables(config: DataBuildConfig, reference: Reference) -> DataBuildConfig:
    """The config with the reference's variables filled in; variables given that differ are an error."""
    manifest = reference.manifest
    chosen = {}
    for role, refs in (
        ("target", manifest.target),
        ("dynamic", manifest.dynamic),
        ("static", manifest.static),
    ):
        have = [ref.name for ref in refs]
        given = getattr(config, role)
        if given and given != have:
            raise ConfigError(
                f"{role}: {given} differs from the reference {reference.path}'s {have}; a model applies only to "
                f"the variables it was trained on: drop {role} or give {have}"
            )
        chosen[role] = have
    assert config.lr_source is not None
    stray = sorted(set(config.lr_source.variables) - set(chosen["dynamic"]))
    if stray:
        raise ConfigError(
            f"lr_source.variables names {stray}, which are not the reference's dynamic variables "
            f"{chosen['dynamic']}; its keys are dynamic variable keys"
        )
    lr_source = config.lr_source
    if "method" not in lr_source.model_fields_set:
        lr_source = lr_source.model_copy(update={"method": reference.regrid_method})
    elif lr_source.method != reference.regrid_method:
        raise ConfigError(
            f"lr_source.method '{lr_source.method}' differs from the reference's '{reference.regrid_method}'; "
            f"regrid inference inputs as in training: drop lr_source.method"
        )
    if lr_source.context_margin != reference.manifest.grid.context_margin:
        if "context_margin" in lr_source.model_fields_set:
            raise ConfigError(
                f"lr_source.context_margin {lr_source.context_margin} differs from the reference's "
                f"{reference.manifest.grid.context_margin}; drop lr_source.context_margin"
            )
        lr_source = lr_source.model_copy(update={"context_margin": reference.manifest.grid.context_margin})
    return config.model_copy(update={**chosen, "lr_source": lr_source})
