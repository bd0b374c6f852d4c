"""Choose dates and draw one quicklook per date and target variable from samples.zarr."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from stride_contracts import SamplesManifest
from stride_core.calendars import TimeIndex, calendar_of, date_in, date_key, iso
from stride_core.errors import ConfigError
from stride_core.map_style import (
    field_style,
    is_precipitation,
    land_fraction,
    map_extents,
    spread_style,
    static_field,
)
from stride_core.variables import VariableRegistry
from stride_plot.figures import quicklook_figure, save_figure


def choose_dates(times: TimeIndex, wanted: list[Any], n_dates: int, source: Path) -> list[int]:
    """Indices of the requested dates (strings or datetimes, read in the samples' calendar), or `n_dates`
    spread evenly over the samples."""
    if not wanted:
        return sorted(
            set(np.linspace(0, len(times) - 1, min(n_dates, len(times))).round().astype(int).tolist())
        )
    position = {date_key(t): i for i, t in enumerate(times)}
    keys = []
    for date in wanted:
        try:
            keys.append(date_key(date_in(times, date)))
        except ValueError as exc:
            raise ConfigError(f"{source}: dates: {exc}; fix 'dates'") from None
    missing = [key for key in keys if key not in position]
    if missing:
        raise ConfigError(
            f"{source}: dates {missing} are not in the samples (they cover {iso(times[0])} to {iso(times[-1])}, "
            f"{calendar_of(times)} calendar); fix 'dates'"
        )
    return [position[key] for key in keys]


def draw_quicklooks(
    samples: xr.Dataset,
    manifest: SamplesManifest,
    indices: list[int],
    registry: VariableRegistry,
    folder: Path,
    *,
    land_mask: str | None = None,
    outline: bool = True,
    validity_mask: str | None = None,
) -> list[Path]:
    """One quicklook PNG per target variable and date of `indices`, written into `folder`.

    Each variable has one colour scale for all its dates (from the registry, see stride_core.map_style); the
    LR panel has its own when the LR input is another variable. Coastlines are the 0.5 contour of the land
    fraction (`land_mask`, else the first of LAND_MASKS among the statics). Pixels where the truth is not
    finite or the static `validity_mask` is <= 0.5 are grey in every panel. A grid stored south-up (the
    manifest's grid.lat_descending false) is drawn north-up.
    """
    written = []
    dynamic = [v.name for v in manifest.dynamic]
    projected = manifest.grid.kind == "projected"
    hr_extent, lr_extent = map_extents(samples, projected)
    coast = land_fraction(samples, manifest, land_mask) if outline else None
    valid = None if validity_mask is None else static_field(samples, manifest, validity_mask) > 0.5
    factor = manifest.grid.factor
    for channel, variable in enumerate(manifest.target):
        spec = registry.get(variable.name)
        lr_channel = dynamic.index(variable.name) if variable.name in dynamic else 0
        lr_ref = manifest.dynamic[lr_channel]
        days = [samples.isel(time=index) for index in indices]
        truths = [_truth(day, channel, valid) if manifest.has_target else None for day in days]
        members_of = [day["members"].values[:, channel] for day in days]
        reference = [t for t in truths if t is not None and np.isfinite(t).any()] or members_of
        scale = field_style(spec, variable.units, reference, label=variable.long_name or variable.name)
        lr_scale = None
        if lr_ref.name != variable.name:
            lr_spec = registry.get(lr_ref.name)
            lr_scale = field_style(
                lr_spec,
                lr_ref.units,
                [day["cond_dynamic"].values[lr_channel] for day in days],
                label=f"LR {lr_ref.long_name or (lr_spec.long_name if lr_spec else lr_ref.name)}",
            )
        precipitation = is_precipitation(spec, variable.units)
        for index, day, truth, members in zip(indices, days, truths, members_of, strict=True):
            spread = members.std(axis=0, ddof=1) if len(members) > 1 else np.zeros_like(members[0])
            if truth is not None:
                spread = np.where(np.isfinite(truth), spread, np.nan)
            stamp = iso(day["time"].values[()])  # a datetime64 or cftime scalar
            figure = quicklook_figure(
                lr_input=day["cond_dynamic"].values[lr_channel],
                truth=truth,
                members=members,
                pmm=day["pmm"].values[channel],
                spread=spread,
                lr_extent=lr_extent,
                hr_extent=hr_extent,
                title=f"{scale.label}  |  {stamp[:10]} {stamp[11:16]} UTC  |  {manifest.split} date {index + 1}",
                variable_label=variable.name,
                units=variable.units,
                cmap=scale.cmap,
                vmin=None,
                vmax=None,
                lr_label=f"LR input: {lr_ref.name} (x{factor} coarser)",
                geographic=not projected,
                axis_labels=("x [km]", "y [km]") if projected else ("longitude [deg E]", "latitude [deg N]"),
                scale=scale,
                lr_scale=lr_scale,
                spread_scale=spread_style(spread, variable.units, precipitation),
                outline=coast,
                row0_north=manifest.grid.lat_descending,
            )
            path = folder / f"quicklook_{variable.name}_{stamp[:16].replace('-', '').replace(':', '')}.png"
            save_figure(figure, path)
            written.append(path)
    return written


def _truth(day: xr.Dataset, channel: int, valid: np.ndarray | None) -> np.ndarray:
    truth = np.asarray(day["target"].values[channel])
    return truth if valid is None else np.where(valid, truth, np.nan)
