"""Choose dates and draw one quicklook per date and target variable from samples.zarr."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from stride_contracts import SamplesManifest
from stride_core.errors import ConfigError
from stride_core.variables import VariableRegistry
from stride_plot.figures import quicklook_figure, save_figure


def choose_dates(
    times: pd.DatetimeIndex, wanted: list[pd.Timestamp], n_dates: int, source: Path
) -> list[int]:
    """Indices of the requested dates, or `n_dates` spread evenly over the samples."""
    if not wanted:
        return sorted(
            set(np.linspace(0, len(times) - 1, min(n_dates, len(times))).round().astype(int).tolist())
        )
    missing = [str(t) for t in wanted if t not in times]
    if missing:
        raise ConfigError(
            f"{source}: dates {missing} are not in the samples (they cover {times[0]} to {times[-1]}); fix 'dates'"
        )
    return [int(np.flatnonzero(times == t)[0]) for t in wanted]


def _extent(lat: np.ndarray, lon: np.ndarray) -> tuple[float, float, float, float]:
    half_lat = abs(lat[1] - lat[0]) / 2 if len(lat) > 1 else 0.5
    half_lon = abs(lon[1] - lon[0]) / 2 if len(lon) > 1 else 0.5
    return (
        float(lon.min() - half_lon),
        float(lon.max() + half_lon),
        float(lat.min() - half_lat),
        float(lat.max() + half_lat),
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
    hr_extent = _extent(samples["lat"].values, samples["lon"].values)
    lr_extent = _extent(samples["lat_lr"].values, samples["lon_lr"].values)
    for channel, variable in enumerate(manifest.target):
        spec = registry.get(variable.name)
        lr_channel = dynamic.index(variable.name) if variable.name in dynamic else 0
        for index in indices:
            day = samples.isel(time=index)
            members = day["members"].values[:, channel]
            truth = day["target"].values[channel] if manifest.has_target else None
            reference = np.concatenate([members.ravel(), truth.ravel() if truth is not None else []])
            vmin, vmax = np.nanpercentile(reference, [1, 99])
            stamp = pd.DatetimeIndex([day["time"].values])[0]
            figure = quicklook_figure(
                lr_input=day["cond_dynamic"].values[lr_channel],
                truth=truth,
                members=members,
                pmm=day["pmm"].values[channel],
                spread=members.std(axis=0, ddof=1) if len(members) > 1 else None,
                lr_extent=lr_extent,
                hr_extent=hr_extent,
                title=f"{variable.long_name or variable.name} - {stamp:%Y-%m-%d %H:%M} UTC",
                variable_label=variable.name,
                units=variable.units,
                cmap=spec.cmap if spec else "viridis",
                vmin=float(vmin),
                vmax=float(vmax),
                lr_label=f"LR {dynamic[lr_channel]} (x{manifest.grid.factor})",
            )
            path = folder / f"quicklook_{variable.name}_{stamp:%Y%m%dT%H%M}.png"
            save_figure(figure, path)
            written.append(path)
    return written
