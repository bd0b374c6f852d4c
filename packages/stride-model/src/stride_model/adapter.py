"""The training-time data adapter: dataset.zarr -> contract-A samples and batches, deterministic per seed.

A sample is addressed by a key `(sample_index, draw)`: `sample_index` picks the anchor time of the split
(see stride_core.features.temporal_windows) and every random choice of the sample (its patch position) comes
from `np.random.default_rng([seed, draw, sample_index])`, so a batch depends on the seed and the keys only,
never on the number of workers or on where training resumed. `StepBatchSampler` turns a training step into
its keys; `FixedKeySampler` walks a fixed list (validation, generation).

Usage::

    from stride_core.transforms import VariableTransforms
    from stride_model.adapter import DownscalingDataset, FixedKeySampler, StepBatchSampler, make_loader

    train = DownscalingDataset(
        "dataset.zarr", "train", VariableTransforms(transform_set), FeatureSpec(temporal_steps=3),
        patch_shape=(128, 128), seed=seed, rain_weighting=RainWeighting(variable="precip"),
    )
    sampler = StepBatchSampler(len(train), batch_size=32, steps=10_000, seed=seed, start_step=resumed_step,
                               rank=rank, world_size=world_size)
    for step, batch in zip(range(resumed_step, 10_000), make_loader(train, sampler, workers=2)):
        cond = assemble_conditioning(batch, model_spec)   # batch: contract A, this rank's share

    val = DownscalingDataset("dataset.zarr", "val", transforms, features, patch_shape=None, in_memory=True)
    for batch in make_loader(val, FixedKeySampler(range(len(val)), batch_size=8), workers=0):
        ...

Lazy mode (`in_memory=False`) reads only each sample's boxes from Zarr, in one zarr call per sample, with
zarr-python opened lazily in each worker process; `in_memory=True` loads the split once (small datasets).
Both modes give bit-identical samples. Context cells outside the dataset domain are 0 in model space (the
training mean of the variable under z-score-like transforms). A dataset built with `lr_source.context_margin`
stores the LR predictors over a larger region (`cond_context`, GridInfo.context_margin cells past the LR grid):
the context window is then cut from it, so cells outside the domain hold the real large-scale field; only a
window reaching past the stored region is zero-padded. A dataset without target (inference) has an all-NaN
target: every cell is masked.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
import zarr.api.asynchronous as zarr_async
from numpy.typing import NDArray
from torch.utils.data import DataLoader, Dataset, Sampler
from zarr.core.sync import sync as zarr_sync

from stride_contracts import DatasetManifest, FeatureSpec
from stride_contracts.dataset import CONTEXT_ARRAY, DATASET_ARRAYS
from stride_core.artifacts import load_variable, open_zarr_artifact
from stride_core.calendars import date_in, date_key, time_index
from stride_core.errors import ArtifactError, ConfigError
from stride_core.features import TemporalWindows, temporal_windows, time_encodings
from stride_core.patches import PatchBox, PatchLayout, RainWeighting, rain_position_weights, sample_rng
from stride_core.transforms import VariableTransforms

Key = tuple[int, int]
"""(sample_index, draw): which anchor of the split, and which random draw of its patch position."""

T = TypeVar("T")
Float32 = NDArray[np.float32]
Selection = tuple[int | slice, ...]


def as_key(key: int | Sequence[int]) -> Key:
    """A plain int is draw 0 of that sample."""
    if isinstance(key, int | np.integer):
        return int(key), 0
    sample_index, draw = key
    return int(sample_index), int(draw)


# --- readers: the same boxes from Zarr or from memory --------------------------------------------------------


class _InlineExecutor(ThreadPoolExecutor):
    """Runs each submitted call at once in the calling thread.

    zarr-python hands every chunk's file read and decode to `asyncio.to_thread`; for the few small chunks of
    one sample those thread hand-offs cost more than the work (measured for a 128x128 crop with T=3: reads
    2.9 -> 1.8 ms wall, a whole sample 2.8-3.2 -> 2.2-2.5 ms CPU). A DataLoader worker has nothing to overlap
    them with, so it runs them inline on its own event loop. Only the speed depends on this: were zarr to stop
    using the default executor, reads would still be correct.
    """

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # delivered through the future, as a thread pool would
            future.set_exception(exc)
        return future


class _ZarrReader:
    """Reads boxes straight from the store's arrays with zarr-python's async API, opened once per process.

    All arrays a sample needs are read in one pass of an event loop owned by this process (see
    `_InlineExecutor`); nothing zarr holds is pickled to workers, and a forked worker opens its own.
    """

    def __init__(self, path: Path, with_context: bool = False) -> None:
        self.path = path
        self.with_context = with_context
        self._pid = -1
        self._loop: asyncio.AbstractEventLoop | None = None
        self._arrays: dict[str, Any] = {}

    def __getstate__(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "with_context": self.with_context,
            "_pid": -1,
            "_loop": None,
            "_arrays": {},
        }

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run a zarr coroutine to completion on this process's loop."""
        if self._pid != os.getpid() or self._loop is None:
            self._loop = asyncio.new_event_loop()
            self._loop.set_default_executor(_InlineExecutor(max_workers=1))
            self._pid, self._arrays = os.getpid(), {}
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # the usual case: no loop runs in this thread, so drive ours
            return self._loop.run_until_complete(coroutine)
        # Called from async code (a notebook): zarr's own loop thread takes it, which cannot deadlock here.
        return zarr_sync(coroutine)

    def arrays(self) -> dict[str, Any]:
        """The store's zarr AsyncArrays by name, opened once per process."""
        if self._pid != os.getpid() or not self._arrays:

            async def open_all() -> dict[str, Any]:
                names = ("target", "cond_dynamic", "cond_static") + (
                    (CONTEXT_ARRAY,) if self.with_context else ()
                )
                arrays = await asyncio.gather(
                    *(zarr_async.open_array(store=str(self.path / name), mode="r") for name in names)
                )
                return dict(zip(names, arrays, strict=True))

            self._arrays = self.run(open_all())
        return self._arrays

    def read(self, requests: Sequence[tuple[str, Selection]]) -> list[Float32]:
        arrays = self.arrays()

        async def read_all() -> list[Any]:
            return await asyncio.gather(*(arrays[name].getitem(sel) for name, sel in requests))

        try:
            results = self.run(read_all())
        except Exception as exc:
            names = ", ".join(sorted({name for name, _ in requests}))
            raise ArtifactError(
                f"{self.path}: array(s) {names} could not be read ({type(exc).__name__}: {exc}); the store is "
                f"corrupt or incomplete, re-create it"
            ) from None
        return [np.asarray(result, dtype=np.float32) for result in results]

    def statics(self) -> Float32:
        (static,) = self.read([("cond_static", (slice(None),))])
        return static


class _MemoryReader:
    """The split's time steps held in memory, answering the same selections as the store would."""

    def __init__(
        self, path: Path, needed: NDArray[np.int64], n_times: int, with_context: bool = False
    ) -> None:
        reader = _ZarrReader(path, with_context)
        arrays = reader.arrays()
        self.path = path
        self.local = np.full(n_times, -1, dtype=np.int64)
        self.local[needed] = np.arange(needed.size)
        # Orthogonal selection along time reads only the chunks holding the split's steps.
        try:
            target, dynamic, static = reader.run(
                _gather(
                    arrays["target"].get_orthogonal_selection((needed,)),
                    arrays["cond_dynamic"].get_orthogonal_selection((needed,)),
                    arrays["cond_static"].getitem((slice(None),)),
                )
            )
        except Exception as exc:
            raise ArtifactError(
                f"{path}: could not be loaded ({type(exc).__name__}: {exc}); the store is corrupt or incomplete, "
                f"re-create it"
            ) from None
        self.arrays = {
            "target": np.asarray(target, dtype=np.float32),
            "cond_dynamic": np.asarray(dynamic, dtype=np.float32),
            "cond_static": np.asarray(static, dtype=np.float32),
        }
        if with_context:
            (context,) = reader.run(_gather(arrays[CONTEXT_ARRAY].get_orthogonal_selection((needed,))))
            self.arrays[CONTEXT_ARRAY] = np.asarray(context, dtype=np.float32)

    def read(self, requests: Sequence[tuple[str, Selection]]) -> list[Float32]:
        out = []
        for name, selection in requests:
            time, *rest = selection
            if name != "cond_static":
                time = self._local(time)
            out.append(np.ascontiguousarray(self.arrays[name][(time, *rest)]))
        return out

    def _local(self, time: int | slice) -> int | slice:
        """Store time index (or a contiguous range of them) -> position in memory; contiguous runs of the
        split stay contiguous here, since every step of a window is loaded."""
        if isinstance(time, slice):
            start, stop = int(self.local[time.start]), int(self.local[time.stop - 1]) + 1
            assert start >= 0 and stop - start == time.stop - time.start, f"steps {time} not loaded"
            return slice(start, stop)
        local = int(self.local[time])
        assert local >= 0, f"step {time} not loaded"
        return local

    def statics(self) -> Float32:
        return self.arrays["cond_static"]


def _shape_of(patch: PatchBox) -> tuple[tuple[int, int], int, int]:
    return patch.lr_shape, patch.factor, patch.margin


async def _gather(*coroutines: Any) -> list[Any]:
    return list(await asyncio.gather(*coroutines))


# --- the dataset -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Box:
    """The store selections of one sample."""

    patch: PatchBox
    time_range: slice
    lr_source: tuple[slice, slice]
    lr_target: tuple[slice, slice]
    array: str = "cond_dynamic"
    """The array `lr_source` indexes: cond_dynamic, or the stored context region cond_context."""


class DownscalingDataset(Dataset[dict[str, Any]]):
    """One split of a dataset.zarr as contract-A samples (one sample per anchor time, no batch dim).

    `__getitem__(key)`: key `(sample_index, draw)` or a plain int (draw 0). `patch_shape`: HR crop, a
    multiple of the factor (None: the whole domain). `rain_weighting`: draw patch positions weighted towards
    wet boxes. `wet_threshold`: add `wet` (physical target > threshold). `in_memory`: load the split once.
    `region`: HR (rows, cols) slices on the LR grid; every sample is that fixed box (a patch that never
    moves), so its context window holds the real field around the region, as a training patch's does.
    """

    def __init__(
        self,
        path: str | Path,
        split: str,
        transforms: VariableTransforms,
        features: FeatureSpec,
        *,
        patch_shape: tuple[int, int] | None = None,
        seed: int = 0,
        rain_weighting: RainWeighting | None = None,
        wet_threshold: float | None = None,
        in_memory: bool = False,
        region: tuple[slice, slice] | None = None,
    ) -> None:
        self.path = Path(path)
        self.split = split
        self.transforms = transforms
        self.features = features
        self.seed = int(seed)
        self.rain_weighting = rain_weighting
        self.wet_threshold = wet_threshold
        dataset, manifest = open_zarr_artifact(self.path, DatasetManifest, DATASET_ARRAYS)
        self.manifest = manifest
        self._check_store(dataset, manifest)
        self._check_transforms(manifest)
        self.times = time_index(dataset["time"])  # cftime dates on climate-model calendars
        codes = load_variable(dataset, "split", self.path).values
        self.windows: TemporalWindows = temporal_windows(
            self.times, codes, split, features, manifest.time_step_hours, source=self.path
        )
        grid = manifest.grid
        self.region_origin: tuple[int, int] | None = None
        if region is not None:
            rows, cols = region
            if patch_shape is not None or rows.start % grid.factor or cols.start % grid.factor:
                raise ConfigError(
                    f"{self.path}: region {region} must start on the LR grid and replaces patches"
                )
            patch_shape = (rows.stop - rows.start, cols.stop - cols.start)
            self.region_origin = (rows.start // grid.factor, cols.start // grid.factor)
        self.layout = PatchLayout.build(grid.hr_shape, grid.factor, patch_shape, features.context_margin)
        # A stored context region is used whenever the model reads a context window.
        self._stored_margin = grid.context_margin if features.context_margin > 0 else 0
        self._rain_channel = self._rain_channel_of(manifest)
        anchor_times = self.times[self.windows.anchors]
        self.time_features = time_encodings(anchor_times, features.time_features)
        self.timestamps = [stamp.isoformat() for stamp in anchor_times]
        self._reader: _ZarrReader | _MemoryReader = (
            _MemoryReader(self.path, np.unique(self.windows.steps), len(self.times), self._stored_margin > 0)
            if in_memory
            else _ZarrReader(self.path, self._stored_margin > 0)
        )
        self._statics: Float32 | None = None
        self._var_label = np.arange(len(manifest.target), dtype=np.int64)

    def _check_store(self, dataset: Any, manifest: DatasetManifest) -> None:
        grid, n_times = manifest.grid, dataset.sizes["time"]
        expected = {
            "target": (n_times, len(manifest.target), *grid.hr_shape),
            "cond_dynamic": (n_times, len(manifest.dynamic), *grid.lr_shape),
            "cond_static": (len(manifest.static), *grid.hr_shape),
        }
        for name, shape in expected.items():
            actual = tuple(dataset[name].shape)
            if actual != tuple(shape):
                raise ArtifactError(
                    f"{self.path}: array '{name}' has shape {actual}, the manifest implies {tuple(shape)}; "
                    f"re-create the store"
                )

    def _check_transforms(self, manifest: DatasetManifest) -> None:
        spec = self.transforms.spec
        for role, transforms, refs in (
            ("target", spec.target, manifest.target),
            ("dynamic", spec.dynamic, manifest.dynamic),
            ("static", spec.static, manifest.static),
        ):
            have, want = [t.variable for t in transforms], [ref.name for ref in refs]
            if have != want:
                raise ConfigError(
                    f"{self.path}: the {role} transforms are for {have}, the dataset's {role} variables are "
                    f"{want}; build the transforms from this dataset's stats"
                )

    def _rain_channel_of(self, manifest: DatasetManifest) -> int | None:
        if self.rain_weighting is None:
            return None
        names = [ref.name for ref in manifest.dynamic]
        if self.rain_weighting.variable not in names:
            raise ConfigError(
                f"rain_weighting.variable '{self.rain_weighting.variable}' is not a dynamic variable of "
                f"{self.path} ({', '.join(names)}); name one of them"
            )
        return names.index(self.rain_weighting.variable)

    def __len__(self) -> int:
        return len(self.windows)

    def indices_at(self, times: Iterable[Any]) -> list[int]:
        """Sample indices of the given anchor times (e.g. the dates to generate): ISO strings, read in the
        store's calendar, or timestamps."""
        position = {date_key(t): i for i, t in enumerate(self.times[self.windows.anchors])}
        indices = []
        for time in times:
            try:
                stamp = date_key(date_in(self.times, time) if isinstance(time, str) else time)
            except ValueError as exc:
                raise ConfigError(f"{self.path}: {exc}; name a sample time of split '{self.split}'") from None
            if stamp not in position:
                raise ConfigError(
                    f"{stamp} is not a sample time of split '{self.split}' in {self.path} (its samples run "
                    f"{self.timestamps[0]} to {self.timestamps[-1]}; with temporal_edge=drop the edges are left out)"
                )
            indices.append(position[stamp])
        return indices

    # The per-sample path is kept to a few numpy calls: it runs hundreds of times a second per worker.
    def __getitem__(self, key: int | Sequence[int]) -> dict[str, Any]:
        index, draw = as_key(key)
        if not 0 <= index < len(self.windows):
            raise IndexError(f"sample {index} outside 0..{len(self.windows) - 1} of split '{self.split}'")
        box = self._box(index, draw)
        steps = self.windows.steps[index]
        hr_rows, hr_cols = box.patch.hr_box
        target_physical, dynamic_physical = self._reader.read(
            [
                ("target", (int(self.windows.anchors[index]), slice(None), hr_rows, hr_cols)),
                (box.array, (box.time_range, slice(None), *box.lr_source)),
            ]
        )
        sample = self._target_part(target_physical)
        sample.update(self._conditioning_part(dynamic_physical, steps - box.time_range.start, box))
        sample["time_features"] = torch.from_numpy(self.time_features[index])
        sample["var_label"] = torch.from_numpy(self._var_label)
        sample["cond_coord"] = {
            "time_index": torch.tensor(int(self.windows.anchors[index])),
            "hr_origin": torch.tensor(box.patch.hr_origin),
            "lr_origin": torch.tensor(box.patch.lr_origin),
            "context_origin": torch.tensor(box.patch.context_origin),
        }
        sample["meta"] = {"timestamp": self.timestamps[index], "key": (index, draw)}
        return sample

    def _box(self, index: int, draw: int) -> _Box:
        rng = sample_rng(self.seed, draw, index)
        weights = None
        if self.rain_weighting is not None and self._rain_channel is not None:
            (field,) = self._reader.read(
                [("cond_dynamic", (int(self.windows.anchors[index]), self._rain_channel))]
            )
            weights = rain_position_weights(
                field, self.layout.lr_shape, self.rain_weighting.threshold, self.rain_weighting.floor
            )
        patch = (
            self.layout.draw(rng, weights)
            if self.region_origin is None
            else self.layout.box(self.region_origin)
        )
        steps = self.windows.steps[index]
        times = slice(int(steps[0]), int(steps[-1]) + 1)
        stored = self._stored_margin
        if stored:
            # The same window on the stored context region, whose row/col 0 lies `stored` cells before the grid's.
            shifted = PatchBox((patch.lr_origin[0] + stored, patch.lr_origin[1] + stored), *_shape_of(patch))
            height, width = self.layout.lr_domain
            lr_source, lr_target = shifted.context_in_domain((height + 2 * stored, width + 2 * stored))
            return _Box(patch, times, lr_source, lr_target, CONTEXT_ARRAY)
        lr_source, lr_target = patch.context_in_domain(self.layout.lr_domain)
        return _Box(patch, times, lr_source, lr_target)

    def _target_part(self, physical: Float32) -> dict[str, Any]:
        valid = np.isfinite(physical)
        model = self.transforms.forward_target(np.where(valid, physical, np.float32(0)))
        model[~valid] = 0.0
        part = {"target": torch.from_numpy(model), "mask": torch.from_numpy(valid)}
        if self.wet_threshold is not None:
            with np.errstate(invalid="ignore"):
                wet = (physical > self.wet_threshold).astype(np.float32)
            part["wet"] = torch.from_numpy(wet)
        return part

    def _conditioning_part(
        self, physical: Float32, positions: NDArray[np.int64], box: _Box
    ) -> dict[str, Any]:
        if not np.isfinite(physical).all():
            raise ArtifactError(
                f"{self.path}: array 'cond_dynamic' has NaN/inf at time steps {box.time_range.start}.."
                f"{box.time_range.stop - 1}; the model is never fed NaN: rebuild with conditioning_fill"
            )
        if positions.size != physical.shape[0] or (positions != np.arange(positions.size)).any():
            physical = physical[positions]  # clamped windows repeat an edge step
        model = self.transforms.forward_conditioning(physical)[0]
        margin = self.layout.margin
        part: dict[str, Any] = {"cond_static": torch.from_numpy(self._static_box(box.patch))}
        if margin == 0:
            part["cond_dynamic"] = torch.from_numpy(model)
            return part
        steps, channels = model.shape[:2]
        context = np.zeros((steps, channels, *box.patch.context_shape), dtype=np.float32)
        context[(slice(None), slice(None), *box.lr_target)] = model
        height, width = box.patch.lr_shape
        part["cond_dynamic"] = torch.from_numpy(
            np.ascontiguousarray(context[:, :, margin : margin + height, margin : margin + width])
        )
        part["cond_context"] = torch.from_numpy(context.reshape(steps * channels, *box.patch.context_shape))
        return part

    def _static_box(self, patch: PatchBox) -> Float32:
        if self._statics is None:
            physical = self._reader.statics()
            if not np.isfinite(physical).all():
                raise ArtifactError(
                    f"{self.path}: array 'cond_static' has NaN/inf; the model is never fed NaN: fill the statics "
                    f"and rebuild the dataset"
                )
            # forward_conditioning transforms statics beside a dynamic array; an empty one stands in for it.
            empty = np.zeros((0, len(self.manifest.dynamic), 1, 1), dtype=np.float32)
            static = self.transforms.forward_conditioning(empty, physical)[1]
            assert static is not None
            self._statics = static.astype(np.float32, copy=False)
        rows, cols = patch.hr_box
        return np.ascontiguousarray(self._statics[:, rows, cols])


# --- samplers --------------------------------------------------------------------------------------------------


class StepBatchSampler(Sampler[list[Key]]):
    """For each step in start_step..steps-1, this rank's share of the step's global batch of keys.

    The global batch of step s: `batch_size` sample indices drawn uniformly with replacement from
    `np.random.default_rng([seed, s])`, slot k with draw `s * batch_size + k`. It depends on (seed, s) only,
    so resuming at any step, with any number of workers or ranks, reproduces exactly the same batches; rank
    r of `world_size` takes slots r * b .. (r + 1) * b - 1 with b = batch_size / world_size.
    """

    def __init__(
        self,
        n_samples: int,
        batch_size: int,
        steps: int,
        *,
        seed: int,
        start_step: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if n_samples < 1:
            raise ConfigError("the split has no samples to draw batches from")
        if batch_size < 1 or batch_size % world_size:
            raise ConfigError(
                f"batch_size {batch_size} must be a positive multiple of the world size {world_size}"
            )
        if not 0 <= rank < world_size:
            raise ConfigError(f"rank {rank} outside 0..{world_size - 1}")
        self.n_samples, self.batch_size, self.steps = n_samples, batch_size, steps
        self.seed, self.start_step, self.rank, self.world_size = seed, start_step, rank, world_size

    def global_batch(self, step: int) -> list[Key]:
        """Every rank's keys of `step`, in slot order."""
        indices = np.random.default_rng([self.seed, step]).integers(self.n_samples, size=self.batch_size)
        first_draw = step * self.batch_size
        return [(int(index), first_draw + slot) for slot, index in enumerate(indices)]

    def __iter__(self) -> Iterator[list[Key]]:
        share = self.batch_size // self.world_size
        for step in range(self.start_step, self.steps):
            yield self.global_batch(step)[self.rank * share : (self.rank + 1) * share]

    def __len__(self) -> int:
        return max(0, self.steps - self.start_step)


class FixedKeySampler(Sampler[list[Key]]):
    """A fixed list of keys (ints are draw 0) in batches; rank r takes the r-th contiguous share of the list."""

    def __init__(
        self, keys: Iterable[int | Sequence[int]], batch_size: int, *, rank: int = 0, world_size: int = 1
    ) -> None:
        if batch_size < 1:
            raise ConfigError(f"batch_size {batch_size} must be >= 1")
        if not 0 <= rank < world_size:
            raise ConfigError(f"rank {rank} outside 0..{world_size - 1}")
        every = [as_key(key) for key in keys]
        bounds = np.linspace(0, len(every), world_size + 1).round().astype(int)
        self.keys = every[bounds[rank] : bounds[rank + 1]]
        self.batch_size = batch_size

    def __iter__(self) -> Iterator[list[Key]]:
        for start in range(0, len(self.keys), self.batch_size):
            yield self.keys[start : start + self.batch_size]

    def __len__(self) -> int:
        return -(-len(self.keys) // self.batch_size)


# --- batching --------------------------------------------------------------------------------------------------


def collate_samples(samples: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Contract-A batch of samples: tensors stacked on a new dim 0, `cond_coord` per key, `meta` as lists."""
    first = samples[0]
    batch: dict[str, Any] = {
        name: torch.stack([sample[name] for sample in samples])
        for name, value in first.items()
        if isinstance(value, torch.Tensor)
    }
    batch["cond_coord"] = {
        name: torch.stack([sample["cond_coord"][name] for sample in samples]) for name in first["cond_coord"]
    }
    batch["meta"] = {
        "timestamps": [sample["meta"]["timestamp"] for sample in samples],
        "keys": [sample["meta"]["key"] for sample in samples],
    }
    return batch


def batch_to(batch: Mapping[str, Any], device: torch.device | str) -> dict[str, Any]:
    """The batch with every tensor (also inside `cond_coord`) on `device`; `meta` unchanged.

    Copies are non-blocking, which overlaps them with compute when the loader pins memory.
    """

    def move(value: Any) -> Any:
        if isinstance(value, torch.Tensor):
            return value.to(device, non_blocking=True)
        if isinstance(value, Mapping):
            return {name: move(item) for name, item in value.items()}
        return value

    return {name: value if name == "meta" else move(value) for name, value in batch.items()}


def make_loader(
    dataset: DownscalingDataset,
    sampler: Sampler[list[Key]] | Iterable[list[Key]],
    workers: int,
    pin_memory: bool = False,
    prefetch_factor: int = 4,
) -> DataLoader[dict[str, Any]]:
    """DataLoader of contract-A batches, one per item of `sampler`; workers stay alive between epochs."""
    return DataLoader(
        dataset,
        batch_sampler=sampler,
        num_workers=workers,
        collate_fn=collate_samples,
        pin_memory=pin_memory,
        persistent_workers=workers > 0,
        prefetch_factor=prefetch_factor if workers > 0 else None,
    )
