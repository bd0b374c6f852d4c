"""Read what the baselines need from the training split of dataset.zarr: times, and only the fields asked for."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np
import xarray as xr
from numpy.typing import NDArray

from stride_contracts import DatasetManifest, SamplesManifest
from stride_contracts.dataset import DATASET_ARRAYS, SPLIT_CODES
from stride_core.artifacts import load_variable, open_zarr_artifact
from stride_core.calendars import TimeIndex, time_index
from stride_core.errors import ArtifactError, ConfigError


def lineage_dataset(manifest: SamplesManifest, override: Path | None) -> Path | None:
    """The dataset the samples were generated from (or `override`): None where the samples name none (then
    the trained baselines are skipped); a one-line error naming the fix where the named path is gone."""
    if override is not None:
        if not override.exists():
            raise ConfigError(f"baseline.dataset: {override} does not exist; give the path of dataset.zarr")
        return override
    uris = [ref.uri for ref in manifest.inputs if ref.role == "dataset"]
    if not uris:
        return None
    path = Path(unquote(urlparse(uris[0]).path))
    if not path.exists():
        raise ConfigError(
            f"samples lineage: dataset {path} does not exist (moved?); set baseline.dataset=PATH/dataset.zarr"
        )
    return path


@dataclass(frozen=True)
class TrainingSplit:
    """The training split of a dataset, opened lazily: fields are read only when asked for."""

    path: Path
    dataset: xr.Dataset
    manifest: DatasetManifest
    index: NDArray[np.int64]
    """Positions of the training times on the store's time axis."""
    times: TimeIndex

    def target(self, variable: str, positions: NDArray[np.int64] | None = None) -> NDArray[np.float32]:
        """HR truth of `variable` at `positions` (indices into the training split; default all) [n, H, W]."""
        names = [v.name for v in self.manifest.target]
        if variable not in names:
            raise ArtifactError(
                f"{self.path}: has no target '{variable}'; evaluate against the dataset it came from"
            )
        return self._read("target", names.index(variable), positions)

    def lr(self, variable: str, positions: NDArray[np.int64] | None = None) -> NDArray[np.float32] | None:
        """LR conditioning of `variable` [n, h, w], None where it is not an LR input."""
        names = [v.name for v in self.manifest.dynamic]
        if variable not in names:
            return None
        return self._read("cond_dynamic", names.index(variable), positions)

    def _read(self, name: str, channel: int, positions: NDArray[np.int64] | None) -> NDArray[np.float32]:
        chosen = self.index if positions is None else self.index[positions]
        # Sorted unique positions read once (zarr reads contiguous chunks), then put back in the asked order.
        unique, inverse = np.unique(chosen, return_inverse=True)
        dims = self.dataset[name].dims
        array = self.dataset[name].isel({dims[0]: unique, dims[1]: channel})
        values = load_variable(array.to_dataset(name=name), name, self.path).values.astype(np.float32)
        return values[inverse]


def open_training_split(path: Path) -> TrainingSplit:
    dataset, manifest = open_zarr_artifact(path, DatasetManifest, DATASET_ARRAYS)
    codes = load_variable(dataset, "split", path).values
    index = np.flatnonzero(codes == SPLIT_CODES["train"]).astype(np.int64)
    if index.size == 0:
        raise ArtifactError(f"{path}: the training split is empty; the baselines need training dates")
    times = time_index(dataset["time"].values[index])
    return TrainingSplit(path=path, dataset=dataset, manifest=manifest, index=index, times=times)
