"""Read samples stores for evaluation: the one evaluated, and the others compared side by side."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from numpy.typing import NDArray

from stride_contracts import SamplesManifest
from stride_contracts.samples import SAMPLES_ARRAYS
from stride_core.artifacts import load_variable, open_zarr_artifact
from stride_core.calendars import TimeIndex, time_index
from stride_core.errors import ArtifactError, ConfigError
from stride_core.grid import latitude_area_weights


@dataclass(frozen=True)
class SamplesStore:
    """A samples store opened lazily, with its label and manifest."""

    label: str
    path: Path
    dataset: xr.Dataset
    manifest: SamplesManifest

    @property
    def times(self) -> TimeIndex:
        """datetime64 for standard calendars, cftime dates for climate-model ones (stride_core.calendars)."""
        return time_index(self.dataset["time"])

    def load(self, name: str, dates: slice | None = None) -> NDArray[Any]:
        """One array (optionally a slice of its dates) in memory; a corrupt chunk is an ArtifactError."""
        array = (
            self.dataset[name]
            if dates is None or "time" not in self.dataset[name].dims
            else self.dataset[name].isel(time=dates)
        )
        return np.asarray(load_variable(array.to_dataset(name=name), name, self.path).values)

    def area_weights(self) -> NDArray[np.float64] | None:
        """[H, W] cos-latitude weights on a lat/lon grid; None (uniform) on a projected grid."""
        grid = self.manifest.grid
        lat = self.dataset.coords.get("lat")
        if grid.kind != "latlon" or lat is None or lat.dims != ("y",):
            return None
        weights = latitude_area_weights(np.asarray(lat.values))
        return np.broadcast_to(weights[:, None], tuple(grid.hr_shape)).copy()


def default_label(manifest: SamplesManifest) -> str:
    """The model label from the checkpoint kind: a regression model is 'regression', an EDM one 'stride'."""
    return "regression" if manifest.model_kind == "regression" else "stride"


def open_samples(path: Path, label: str | None) -> SamplesStore:
    dataset, manifest = open_zarr_artifact(path, SamplesManifest, SAMPLES_ARRAYS)
    if not manifest.has_target:
        raise ArtifactError(
            f"{path}: has no target values (has_target is false); evaluation needs the truth: generate from a "
            f"dataset with targets"
        )
    return SamplesStore(label or default_label(manifest), path, dataset, manifest)


def check_comparable(reference: SamplesStore, other: SamplesStore) -> None:
    """One-line ConfigError when `other` is on another grid, lacks a variable, or covers other dates."""
    where = f"--compare {other.label}={other.path}"
    a, b = reference.manifest, other.manifest
    if tuple(a.grid.hr_shape) != tuple(b.grid.hr_shape) or a.grid.kind != b.grid.kind:
        raise ConfigError(
            f"{where}: grid {b.grid.kind} {tuple(b.grid.hr_shape)} differs from --samples' {a.grid.kind} "
            f"{tuple(a.grid.hr_shape)}; compare stores generated from the same dataset"
        )
    missing = sorted({v.name for v in a.target} - {v.name for v in b.target})
    if missing:
        raise ConfigError(
            f"{where}: has no target variable(s) {missing} of --samples; compare stores of the same targets"
        )
    if not reference.times.equals(other.times):
        extra = other.times.difference(list(reference.times))
        lacking = reference.times.difference(list(other.times))
        detail = f"{len(lacking)} date(s) of --samples missing (first {lacking[0]})" if len(lacking) else ""
        detail += ("; " if detail and len(extra) else "") + (
            f"{len(extra)} other date(s) (first {extra[0]})" if len(extra) else ""
        )
        raise ConfigError(
            f"{where}: covers other dates than --samples ({detail or 'different order'}); generate both from the "
            f"same split"
        )


def static_validity(store: SamplesStore, name: str | None) -> NDArray[np.bool_] | None:
    """[H, W]: where the static `name` is > 0.5 (None without a mask)."""
    if name is None:
        return None
    statics = [v.name for v in store.manifest.static]
    if name not in statics:
        raise ConfigError(
            f"validity_mask: '{name}' is not a static variable of {store.path} (it has {statics or 'none'}); "
            f"name one of them or leave validity_mask unset"
        )
    field = store.load("cond_static")[statics.index(name)]
    return np.asarray(np.isfinite(field) & (field > 0.5))
