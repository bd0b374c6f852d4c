"""Assemble dataset.zarr from a source: crop to a region and the factor, coarsen HR to LR, label splits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from stride_contracts.dataset import SPLIT_CODES, DatasetManifest, GridInfo, SplitRange, VariableRef
from stride_core.artifacts import write_zarr_artifact
from stride_core.chunking import dataset_chunks
from stride_core.errors import ConfigError, InputDataError
from stride_core.grid import coarsen_conservative, coarsen_coordinate
from stride_core.progress import get_logger
from stride_core.tracking import RunContext
from stride_core.variables import VariableRegistry, VariableSpec
from stride_data.config import DataBuildConfig
from stride_data.grids import SourceGrid, detect_grid
from stride_data.lr_source import open_lr_source
from stride_data.regions import region_slices
from stride_data.regrid import common_times
from stride_data.sources import check_finite_somewhere, describe_source, open_sources, select_variable

log = get_logger("stride-data")


def build_dataset(config: DataBuildConfig, run: RunContext) -> None:
    specs = _specs(config, VariableRegistry.load(config.variables_file))
    unknown_fill = sorted(set(config.conditioning_fill) - set(config.dynamic))
    if unknown_fill:
        raise InputDataError(f"conditioning_fill names {unknown_fill}, which are not dynamic variables")
    source, files, path = open_sources(
        config.source.files, config.source.engine, config.source.min_lead_hours
    )
    if "time" not in source.dims:
        raise InputDataError(f"{path}: no 'time' dimension (dims: {list(source.dims)})")
    grid = detect_grid(source, path)
    factor = config.coarsen.factor
    full = (slice(0, grid.lat.shape[0]), slice(0, grid.lat.shape[1]))
    rows, cols = (
        region_slices(config.region, grid, factor, path) if config.region else _trim(full, factor, path)
    )
    if (rows, cols) != full:
        # Without a region, trimming is the only way to make the factor divide the grid: say which cells go.
        why = "" if config.region else "; factor does not divide the grid: set region.box to keep other cells"
        log.info(
            "cropping %dx%d to rows %d:%d, cols %d:%d (factor %d)%s",
            *grid.lat.shape,
            rows.start,
            rows.stop,
            cols.start,
            cols.stop,
            factor,
            why,
        )
    grid = grid.crop(rows, cols)
    source = source.isel({grid.y_dim: rows, grid.x_dim: cols}).sortby("time")
    times = pd.DatetimeIndex(source["time"].values)
    lr = open_lr_source(config.lr_source, grid, factor) if config.lr_source else None
    if lr is not None:
        times = common_times(times, lr.times, path, lr.path)
        source = source.sel(time=times.values)
    split = _split_codes(times, config, path)
    keep = split >= 0
    source = source.isel(time=np.flatnonzero(keep))
    times, split = times[keep], split[keep]
    weights = grid.cell_weights()

    def load(key: str, with_time: bool) -> np.ndarray:
        array = select_variable(source, specs[key], path)
        expected = ("time", grid.y_dim, grid.x_dim) if with_time else (grid.y_dim, grid.x_dim)
        if tuple(array.dims) != expected:
            raise InputDataError(
                f"{path}: variable '{array.name}' has dims {array.dims}, expected {expected}"
            )
        values = array.values.astype(np.float32)
        check_finite_somewhere(values, f"variable '{array.name}'", path)
        return values

    n_lat, n_lon = grid.lat.shape
    log.info(
        "reading %s (%d time steps, %dx%d HR %s grid, factor %d)",
        path.name,
        len(times),
        n_lat,
        n_lon,
        grid.kind,
        factor,
    )
    target = np.stack([load(key, True) for key in config.target], axis=1)
    if lr is None:
        dynamic = np.stack(
            [_coarsened(load(key, True), key, config, weights, path) for key in config.dynamic], axis=1
        )
    else:
        log.info("regridding %s from %s (%s)", ", ".join(config.dynamic), lr.path.name, lr.config.method)
        reason = f"have no valid value after {lr.config.method} regridding of {lr.path.name}"
        dynamic = np.stack(
            [_filled(lr.regridded(specs[k], times), k, config, lr.path, reason) for k in config.dynamic],
            axis=1,
        )
    static = np.stack([load(key, False) for key in config.static], axis=0) if config.static else None
    if static is not None and np.isnan(static).any():
        raise InputDataError(f"{path}: static fields {config.static} contain NaN; fill or crop them first")

    dataset = _as_xarray(config, times, split, grid, factor, target, dynamic, static)
    hr_keys = config.target + config.static + (config.dynamic if lr is None else [])
    hr_names = sorted({specs[k].data_name for k in hr_keys})
    manifest = DatasetManifest(
        producer=run.producer(),
        target=[_ref(specs[k]) for k in config.target],
        dynamic=[_ref(specs[k]) for k in config.dynamic],
        static=[_ref(specs[k]) for k in config.static],
        grid=GridInfo(
            kind="projected" if grid.kind == "projected" else "latlon",
            crs=grid.crs,
            hr_shape=(n_lat, n_lon),
            lr_shape=(n_lat // factor, n_lon // factor),
            factor=factor,
            lat_descending=bool(grid.lat[0].mean() > grid.lat[-1].mean()),
            region=config.region.describe() if config.region else None,
            lr_method="regridded" if lr else "conservative_coarsening",
            lr_regrid_method=lr.config.method if lr else None,
        ),
        splits={name: SplitRange(start=r.start, end=r.end) for name, r in config.splits.items()},
        time_step_hours=_time_step_hours(times),
        n_times=len(times),
        sources=[describe_source(file, hr_names) for file in files]
        + (lr.provenance([specs[k] for k in config.dynamic]) if lr else []),
    )
    write_zarr_artifact(dataset, manifest, config.output)
    counts = {f"n_times_{name}": float((split == code).sum()) for name, code in SPLIT_CODES.items()}
    valid = float(np.isfinite(target).mean())
    run.log_metrics({**counts, "hr_height": n_lat, "hr_width": n_lon, "target_valid_fraction": valid})
    log.info(
        "wrote %s (%s; %.1f%% of target cells valid)",
        config.output,
        ", ".join(f"{k[8:]} {int(v)}" for k, v in counts.items()),
        100 * valid,
    )


def _specs(config: DataBuildConfig, registry: VariableRegistry) -> dict[str, VariableSpec]:
    """The registry entry of every configured variable; an unknown key names its config field."""
    specs = {}
    for field, keys in (("target", config.target), ("dynamic", config.dynamic), ("static", config.static)):
        for key in keys:
            spec = registry.get(key)
            if spec is None:
                raise ConfigError(
                    f"{field}: unknown variable '{key}' (known: {', '.join(registry.keys())}); fix {field} or "
                    f"add the variable to a variables_file"
                )
            specs[key] = spec
    return specs


def _trim(full: tuple[slice, slice], factor: int, path: Path) -> tuple[slice, slice]:
    rows, cols = (slice(0, s.stop // factor * factor) for s in full)
    if rows.stop == 0 or cols.stop == 0:
        raise InputDataError(f"{path}: grid {full[0].stop}x{full[1].stop} is smaller than factor {factor}")
    return rows, cols


def _coarsened(
    values: np.ndarray, key: str, config: DataBuildConfig, weights: np.ndarray, path: Path
) -> np.ndarray:
    """LR field of one dynamic variable; cells without enough valid HR cells get the configured fill."""
    coarse = coarsen_conservative(
        values, config.coarsen.factor, weights, min_valid_fraction=config.coarsen.min_valid_fraction
    )
    reason = f"have too few valid HR cells (min_valid_fraction {config.coarsen.min_valid_fraction})"
    return _filled(coarse, key, config, path, reason)


def _filled(coarse: np.ndarray, key: str, config: DataBuildConfig, path: Path, reason: str) -> np.ndarray:
    """`coarse` with NaN cells set to conditioning_fill[key]; NaN without a fill is an error."""
    missing = np.isnan(coarse)
    if missing.any():
        if key not in config.conditioning_fill:
            raise InputDataError(
                f"{path}: {missing.mean():.1%} of LR '{key}' cells {reason}; the model is never fed NaN: "
                f"choose a covered region or set conditioning_fill.{key}"
            )
        coarse[missing] = config.conditioning_fill[key]
        log.info(
            "filled %.1f%% of LR '%s' cells with %g", 100 * missing.mean(), key, config.conditioning_fill[key]
        )
    return coarse


def _ref(spec: VariableSpec) -> VariableRef:
    return VariableRef(name=spec.key, units=spec.units, long_name=spec.long_name, source_name=spec.data_name)


def _split_codes(times: pd.DatetimeIndex, config: DataBuildConfig, path: object) -> np.ndarray:
    codes = np.full(len(times), -1, dtype=np.int8)
    for name, date_range in config.splits.items():
        inside = (times >= pd.Timestamp(date_range.start)) & (times <= pd.Timestamp(date_range.end))
        if not inside.any():
            raise InputDataError(
                f"{path}: split '{name}' ({date_range.start} to {date_range.end}) selects no time step; the data "
                f"covers {times[0]} to {times[-1]}; fix splits.{name}"
            )
        codes[inside] = SPLIT_CODES[name]
    return codes


def _time_step_hours(times: pd.DatetimeIndex) -> float:
    if len(times) < 2:
        return 1.0
    return float(np.median(np.diff(times.values).astype("timedelta64[s]").astype(np.float64)) / 3600.0)


def _coordinates(grid: SourceGrid, factor: int) -> dict[str, tuple[tuple[str, ...], np.ndarray]]:
    """HR and LR coordinates: 1-D lat/lon for lat/lon grids; x/y in metres plus 2-D lat/lon when projected."""
    if grid.kind == "latlon":
        return {
            "lat": (("y",), grid.y),
            "lon": (("x",), grid.x),
            "lat_lr": (("y_lr",), coarsen_coordinate(grid.y, factor)),
            "lon_lr": (("x_lr",), coarsen_coordinate(grid.x, factor)),
        }
    uniform = np.ones(grid.lat.shape)
    return {
        "y": (("y",), grid.y),
        "x": (("x",), grid.x),
        "lat": (("y", "x"), grid.lat),
        "lon": (("y", "x"), grid.lon),
        "y_lr": (("y_lr",), coarsen_coordinate(grid.y, factor)),
        "x_lr": (("x_lr",), coarsen_coordinate(grid.x, factor)),
        "lat_lr": (("y_lr", "x_lr"), coarsen_conservative(grid.lat, factor, uniform).astype(np.float64)),
        "lon_lr": (("y_lr", "x_lr"), coarsen_conservative(grid.lon, factor, uniform).astype(np.float64)),
    }


def _as_xarray(
    config: DataBuildConfig,
    times: pd.DatetimeIndex,
    split: np.ndarray,
    grid: SourceGrid,
    factor: int,
    target: np.ndarray,
    dynamic: np.ndarray,
    static: np.ndarray | None,
) -> xr.Dataset:
    shape = grid.lat.shape
    dataset = xr.Dataset(
        {
            "target": (("time", "target_var", "y", "x"), target),
            "cond_dynamic": (("time", "dynamic_var", "y_lr", "x_lr"), dynamic),
            "cond_static": (
                ("static_var", "y", "x"),
                static if static is not None else np.zeros((0, *shape), "f4"),
            ),
            "split": (("time",), split),
        },
        coords={
            "time": times.values,
            # Variable-length strings: Zarr v3 specifies them, unlike fixed-width unicode.
            "target_var": np.array(config.target, dtype=object),
            "dynamic_var": np.array(config.dynamic, dtype=object),
            "static_var": np.array(config.static, dtype=object),
            **_coordinates(grid, factor),
        },
    )
    chunks = dataset_chunks(
        target.shape,
        dynamic.shape,
        dataset["cond_static"].shape,
        tile=config.chunk_tile,
        time_steps=config.time_chunk,
    )
    dataset["target"].encoding["chunks"] = chunks.target
    dataset["cond_dynamic"].encoding["chunks"] = chunks.cond_dynamic
    dataset["cond_static"].encoding["chunks"] = chunks.cond_static
    return dataset
