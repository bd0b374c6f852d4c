"""Choose dates and draw one quicklook per date and target variable from samples.zarr."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from stride_contracts import SamplesManifest
from stride_core.calendars import TimeIndex, calendar_of, date_in, date_key, iso
from stride_core.errors import ConfigError
from stride_core.variables import VariableRegistry
from stride_plot.figures import Extent, quicklook_figure, save_figure


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


def _extent(rows: np.ndarray, cols: np.ndarray) -> tuple[float, float, float, float]:
    """Cell-edge extent (left, right, bottom, top) from 1-D cell-centre coordinates."""
    half_row = abs(rows[1] - rows[0]) / 2 if len(rows) > 1 else 0.5
    half_col = abs(cols[1] - cols[0]) / 2 if len(cols) > 1 else 0.5
    return (
        float(cols.min() - half_col),
        float(cols.max() + half_col),
        float(rows.min() - half_row),
        float(rows.max() + half_row),
    )


def map_extents(samples: xr.Dataset, projected: bool) -> tuple[Extent, Extent]:
    """HR and LR extents: degrees on lat/lon grids, kilometres of the projection on projected ones."""
    if projected:
        km = {name: samples[name].values / 1000.0 for name in ("y", "x", "y_lr", "x_lr")}
        return _extent(km["y"], km["x"]), _extent(km["y_lr"], km["x_lr"])
    return (
        _extent(samples["lat"].values, samples["lon"].values),
        _extent(samples["lat_lr"].values, samples["lon_lr"].values),
    )


def draw_quicklooks(
    samples: xr.Dataset,
    manifest: SamplesManifest,
    indices: list[int],
    registry: VariableRegistry,
    folder: Path,
) -> list[Path]:
    written = []
    dynamic = [v.name for v in manifest.dynamic]
    projected = manifest.grid.kind == "projected"
    hr_extent, lr_extent = map_extents(samples, projected)
    for channel, variable in enumerate(manifest.target):
        spec = registry.get(variable.name)
        lr_channel = dynamic.index(variable.name) if variable.name in dynamic else 0
        for index in indices:
            day = samples.isel(time=index)
            members = day["members"].values[:, channel]
            truth = day["target"].values[channel] if manifest.has_target else None
            # Colours follow the truth when there is one, so a poor model saturates instead of hiding it.
            reference = truth if truth is not None and np.isfinite(truth).any() else members
            vmin, vmax = np.nanpercentile(reference, [1, 99])
            stamp = iso(day["time"].values[()])  # a datetime64 or cftime scalar
            figure = quicklook_figure(
                lr_input=day["cond_dynamic"].values[lr_channel],
                truth=truth,
                members=members,
                pmm=day["pmm"].values[channel],
                spread=members.std(axis=0, ddof=1) if len(members) > 1 else None,
                lr_extent=lr_extent,
                hr_extent=hr_extent,
                title=f"{variable.long_name or variable.name} - {stamp[:10]} {stamp[11:16]} UTC",
                variable_label=variable.name,
                units=variable.units,
                cmap=spec.cmap if spec else "viridis",
                vmin=float(vmin),
                vmax=float(vmax),
                lr_label=f"LR {dynamic[lr_channel]} (x{manifest.grid.factor})",
                geographic=not projected,
                axis_labels=("x [km]", "y [km]") if projected else ("lon", "lat"),
            )
            path = folder / f"quicklook_{variable.name}_{stamp[:16].replace('-', '').replace(':', '')}.png"
            save_figure(figure, path)
            written.append(path)
    return written
