"""Model inputs derived from a dataset's time axis and manifest: temporal windows, cyclic time encodings and
channel accounting (contract C: the model never infers its channel counts from tensors)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from stride_contracts import DatasetManifest
from stride_contracts.checkpoint import FeatureSpec
from stride_contracts.dataset import SPLIT_CODES
from stride_core.calendars import TimeIndex, days_in_year, days_into_year, elapsed_seconds, hour_of_day
from stride_core.errors import ArtifactError, ConfigError
from stride_core.patches import lr_patch_shape

STEP_TOLERANCE_S = 1.0
"""Two steps are contiguous when their times differ by the dataset step to within this many seconds."""


@dataclass(frozen=True)
class TemporalWindows:
    """The samples of one split: `anchors` [N] and their stacked steps `steps` [N, T], as store time indices.

    Every window lies in one contiguous run of the split (same split, consecutive store indices, times one
    dataset step apart), so `steps[n]` is non-decreasing and spans consecutive store indices; under `clamp`
    an edge step repeats.
    """

    anchors: NDArray[np.int64]
    steps: NDArray[np.int64]

    def __len__(self) -> int:
        return int(self.anchors.size)


def window_offsets(features: FeatureSpec) -> NDArray[np.int64]:
    """Offsets of the T stacked steps from the anchor: centred t-(T-1)//2 .. t+T//2, past t-T+1 .. t."""
    steps = features.temporal_steps
    first = -((steps - 1) // 2) if features.temporal_mode == "centred" else -(steps - 1)
    return np.arange(first, first + steps, dtype=np.int64)


def contiguous_runs(times: TimeIndex, index: NDArray[np.integer], step_hours: float) -> NDArray[np.int64]:
    """Run id of each of the store indices `index` (sorted): a new run starts after a gap in the store or in time.

    Time differences are counted in the axis's own calendar (stride_core.calendars), so 30 February to
    1 March of a `360_day` axis is one daily step and 28 February to 1 March of a `noleap` one too.
    """
    if index.size == 0:
        return np.zeros(0, dtype=np.int64)
    seconds = elapsed_seconds(times[index])
    adjacent = np.diff(index) == 1
    one_step = np.abs(np.diff(seconds) - step_hours * 3600.0) <= STEP_TOLERANCE_S
    return np.concatenate([[0], np.cumsum(~(adjacent & one_step))]).astype(np.int64)


def temporal_windows(
    times: TimeIndex,
    split_codes: NDArray[np.integer],
    split: str,
    features: FeatureSpec,
    step_hours: float,
    *,
    source: object = "dataset",
) -> TemporalWindows:
    """Anchors of `split` and their T stacked store indices, with FeatureSpec's edge rule.

    Edges are the split's own boundaries, the ends of the data and gaps in time (two stored steps further
    apart than `step_hours`): a window never crosses one. `drop` keeps only anchors whose whole window fits
    in their run; `clamp` keeps every anchor and replaces each missing step by the nearest step of the run.
    `source` names the store in errors.
    """
    if split not in SPLIT_CODES:
        raise ConfigError(f"unknown split '{split}'; choose one of {', '.join(SPLIT_CODES)}")
    if len(times) != len(split_codes):
        raise ArtifactError(
            f"{source}: 'time' has {len(times)} steps but 'split' has {len(split_codes)}; re-create the store"
        )
    index = np.flatnonzero(np.asarray(split_codes) == SPLIT_CODES[split]).astype(np.int64)
    if index.size == 0:
        raise ArtifactError(
            f"{source}: split '{split}' has no time steps; rebuild the dataset with splits.{split}"
        )
    runs = contiguous_runs(times, index, step_hours)
    # Position of each split step within `index`, and the first/last position of its run.
    position = np.arange(index.size)
    run_first = np.searchsorted(runs, runs, side="left")
    run_last = np.searchsorted(runs, runs, side="right") - 1
    wanted = position[:, None] + window_offsets(features)[None, :]
    fits = (wanted >= run_first[:, None]) & (wanted <= run_last[:, None])
    if features.temporal_edge == "drop":
        keep = fits.all(axis=1)
        if not keep.any():
            raise ConfigError(
                f"{source}: no window of temporal_steps={features.temporal_steps} ({features.temporal_mode}) fits "
                f"in split '{split}' (longest contiguous run: {np.bincount(runs).max()} steps); use fewer steps "
                f"or temporal_edge=clamp"
            )
        return TemporalWindows(anchors=index[keep], steps=index[wanted[keep]])
    clamped = np.clip(wanted, run_first[:, None], run_last[:, None])
    return TemporalWindows(anchors=index, steps=index[clamped])


def time_encodings(times: TimeIndex, names: Sequence[str]) -> NDArray[np.float32]:
    """(sin, cos) pairs of each cyclic feature in `names` order -> float32 [N, 2 * len(names)].

    `doy`: phase 2 pi (d - 1 + h / 24) / L with d the day of year, h the fractional hour and L the length of
    that year in the axis's calendar (365 or 366 days; 360 in `360_day`, 365 in `noleap`, 366 in `all_leap`):
    the fraction of the year elapsed (stride_core.calendars.year_phase), so 1 January 00:00 is phase 0 in every
    year, leap years do not drift, and the same season has the same phase in every calendar: a model trained on
    one calendar applies to another. `hour`: phase 2 pi h / 24.
    """
    hours = hour_of_day(times)
    columns = []
    for name in names:
        if name == "doy":
            # Same operations, in the same order, as before calendars: standard axes encode bit-identically.
            phase = 2 * np.pi * days_into_year(times) / days_in_year(times)
        elif name == "hour":
            phase = 2 * np.pi * hours / 24.0
        else:
            raise ConfigError(f"unknown time feature '{name}'; choose doy or hour")
        columns += [np.sin(phase), np.cos(phase)]
    if not columns:
        return np.zeros((len(times), 0), dtype=np.float32)
    return np.stack(columns, axis=1).astype(np.float32)


@dataclass(frozen=True)
class ChannelCounts:
    """Channel and shape bookkeeping of one configuration; the config layer turns it into ModelSpec fields."""

    n_target: int
    n_dynamic: int
    n_static: int
    temporal_steps: int
    n_time_features: int
    num_var_labels: int
    hr_shape: tuple[int, int]
    lr_shape: tuple[int, int]
    context_shape: tuple[int, int] | None
    """LR context region (lr_shape + 2 margin per axis); None when FeatureSpec.context_margin is 0."""

    @property
    def in_channels(self) -> int:
        """Conditioning image channels: T-major stacked LR dynamics, then statics (ModelSpec.in_channels)."""
        return self.n_dynamic * self.temporal_steps + self.n_static

    @property
    def context_input_channels(self) -> int:
        """Channels of cond_context (T * C_dyn), 0 without a context region."""
        return self.n_dynamic * self.temporal_steps if self.context_shape is not None else 0

    def model_spec_fields(self) -> dict[str, Any]:
        """The ModelSpec fields every model takes from the data; the optional features' sizes
        (n_time_features, context_shape, num_var_labels) go in only where the config turns them on."""
        return {
            "in_dynamic_channels": self.n_dynamic,
            "in_static_channels": self.n_static,
            "out_channels": self.n_target,
            "temporal_steps": self.temporal_steps,
            "lr_shape": self.lr_shape,
            "hr_shape": self.hr_shape,
        }


def channel_counts(
    manifest: DatasetManifest, features: FeatureSpec, patch_shape: tuple[int, int] | None
) -> ChannelCounts:
    """Counts for a model trained on `patch_shape` HR crops of this dataset (None: the whole domain)."""
    grid = manifest.grid
    domain = (grid.hr_shape[0], grid.hr_shape[1])
    hr_shape = (patch_shape[0], patch_shape[1]) if patch_shape is not None else domain
    lr_shape = lr_patch_shape(hr_shape, grid.factor, domain)
    margin = features.context_margin
    return ChannelCounts(
        n_target=len(manifest.target),
        n_dynamic=len(manifest.dynamic),
        n_static=len(manifest.static),
        temporal_steps=features.temporal_steps,
        n_time_features=features.n_time_features,
        num_var_labels=len(manifest.target),
        hr_shape=hr_shape,
        lr_shape=lr_shape,
        context_shape=(lr_shape[0] + 2 * margin, lr_shape[1] + 2 * margin) if margin else None,
    )
