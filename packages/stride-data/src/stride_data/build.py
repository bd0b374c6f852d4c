"""Assemble dataset.zarr from a source: crop to a region and the factor, coarsen HR to LR, label splits.

Or, for inference, from an LR-only source and a training dataset (`reference`): the LR fields regridded onto
the reference's LR grid exactly as in training, its statics, every time step in split 'test', no target.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from stride_contracts.dataset import (
    CONTEXT_ARRAY,
    INFERENCE_SPLIT,
    SPLIT_CODES,
    DatasetManifest,
    GridInfo,
    SplitRange,
    VariableRef,
)
from stride_core.artifacts import write_zarr_artifact
from stride_core.calendars import TimeIndex, calendar_of, date_in, elapsed_seconds, iso, to_datetime_or_iso
from stride_core.chunking import dataset_chunks
from stride_core.errors import ConfigError, InputDataError
from stride_core.grid import coarsen_conservative, coarsen_coordinate
from stride_core.progress import get_logger
from stride_core.regions import region_slices
from stride_core.tracking import RunContext
from stride_core.units import Conversion
from stride_core.variables import VariableRegistry, VariableSpec
from stride_data.config import DataBuildConfig, DateRange, SplitsConfig
from stride_data.grids import SourceGrid, detect_grid
from stride_data.inference import check_variables, open_reference
from stride_data.lr_context import context_coordinates, interior
from stride_data.lr_source import LRSource, open_lr_source
from stride_data.sources import (
    check_finite_somewhere,
    describe_source,
    open_sources,
    select_variable,
    source_times,
    unique_times,
    unit_conversion,
)

log = get_logger("stride-data")


def build_dataset(config: DataBuildConfig, run: RunContext) -> None:
    if config.reference is not None:
        build_inference_dataset(config, run)
        return
    assert config.source is not None and config.splits is not None  # the config's validator says so
    registry = VariableRegistry.load(config.variables_file)
    specs = _specs(config, registry)
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
    source = unique_times(source, path, config.source.duplicate_times, "source.duplicate_times")
    times = source_times(source, path)
    lr = open_lr_source(config.lr_source, grid, factor) if config.lr_source else None
    if lr is not None:
        times = lr.align(times, path)
        source = source.sel(time=times.values)
    split = _split_codes(times, config.splits, path)
    keep = split >= 0
    source = source.isel(time=np.flatnonzero(keep))
    times, split = times[keep], split[keep]
    weights = grid.cell_weights()
    conversions: dict[str, Conversion] = {}

    def load(key: str, with_time: bool) -> np.ndarray:
        array = select_variable(source, specs[key], path)
        expected = ("time", grid.y_dim, grid.x_dim) if with_time else (grid.y_dim, grid.x_dim)
        if tuple(array.dims) != expected:
            raise InputDataError(
                f"{path}: variable '{array.name}' has dims {array.dims}, expected {expected}"
            )
        values = array.values.astype(np.float32)
        check_finite_somewhere(values, f"variable '{array.name}'", path)
        conversion = unit_conversion(array, specs[key], path)
        if conversion is not None:
            conversions[key] = conversion
            values = conversion.apply(values)
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
    lr_keys = config.lr_source_dynamic()
    hr_dynamic = [key for key in config.dynamic if key not in lr_keys]
    coarse = {key: _coarsened(load(key, True), key, config, weights, path) for key in hr_dynamic}
    context = None
    if lr is not None:
        context = _regridded_predictors(lr, config, specs, times, lr_keys)
        regridded = interior(context, lr.margin)
        coarse.update({key: regridded[:, lr_keys.index(key)] for key in lr_keys})
        conversions.update(lr.conversions)
        if hr_dynamic:
            log.info("coarsened %s from %s (coarsened_dynamic)", ", ".join(hr_dynamic), path.name)
    dynamic = np.stack([coarse[key] for key in config.dynamic], axis=1)
    static = np.stack([load(key, False) for key in config.static], axis=0) if config.static else None
    if static is not None and np.isnan(static).any():
        raise InputDataError(f"{path}: static fields {config.static} contain NaN; fill or crop them first")

    dataset = _as_xarray(config, times, split, grid, factor, target, dynamic, static)
    if lr is not None and lr.margin:
        _add_context(dataset, context, lr)
    hr_keys = config.target + config.static + hr_dynamic
    hr_names = sorted({specs[k].data_name for k in hr_keys})
    manifest = DatasetManifest(
        producer=run.producer(),
        target=[_ref(specs[k], conversions) for k in config.target],
        dynamic=[_ref(specs[k], conversions) for k in config.dynamic],
        static=[_ref(specs[k], conversions) for k in config.static],
        registry=registry.entries(specs),
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
            context_margin=lr.margin if lr else 0,
        ),
        splits=_split_ranges(times, config.splits),
        time_step_hours=_time_step_hours(times),
        calendar=calendar_of(times),
        time_match=lr.pairing.record if lr is not None and lr.pairing is not None else None,
        n_times=len(times),
        sources=[describe_source(file, hr_names) for file in files]
        + (lr.provenance([specs[k] for k in lr_keys]) if lr else []),
        valid_counts=valid_counts(config, split, target, dynamic, static),
    )
    _log_conversions(conversions)
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


def valid_counts(
    config: DataBuildConfig,
    split: np.ndarray,
    target: np.ndarray,
    dynamic: np.ndarray,
    static: np.ndarray | None,
) -> dict[str, dict[str, int]]:
    """Finite values per variable and split, as written: what a reader compares to detect lost chunks."""
    counts: dict[str, dict[str, int]] = {}
    for role, keys, values in (("target", config.target, target), ("dynamic", config.dynamic, dynamic)):
        for channel, key in enumerate(keys):
            counts[f"{role}.{key}"] = {
                name: int(np.isfinite(values[split == code, channel]).sum())
                for name, code in SPLIT_CODES.items()
                if (split == code).any()
            }
    for channel, key in enumerate(config.static):
        assert static is not None
        counts[f"static.{key}"] = {"all": int(np.isfinite(static[channel]).sum())}
    return counts


def _trim(full: tuple[slice, slice], factor: int, path: Path) -> tuple[slice, slice]:
    rows, cols = (slice(0, s.stop // factor * factor) for s in full)
    if rows.stop == 0 or cols.stop == 0:
        largest = min(full[0].stop, full[1].stop)
        raise InputDataError(
            f"{path}: grid {full[0].stop}x{full[1].stop} is smaller than coarsen.factor {factor}, so no LR cell "
            f"fits; choose coarsen.factor <= {largest} (e.g. --factor {max(2, largest // 4)}) or a larger source grid"
        )
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


def _ref(spec: VariableSpec, conversions: dict[str, Conversion]) -> VariableRef:
    conversion = conversions.get(spec.key)
    return VariableRef(
        name=spec.key,
        units=spec.units,
        long_name=spec.long_name,
        source_name=spec.data_name,
        source_units=conversion.source if conversion else None,
        conversion=conversion.describe() if conversion else None,
    )


def _log_conversions(conversions: dict[str, Conversion]) -> None:
    for key, conversion in conversions.items():
        log.info("converted '%s' on reading: %s", key, conversion.describe())


def _regridded_predictors(
    lr: LRSource,
    config: DataBuildConfig,
    specs: dict[str, VariableSpec],
    times: TimeIndex,
    keys: list[str] | None = None,
) -> np.ndarray:
    """[time, variable, y, x] of `keys` (default every dynamic variable) regridded from the LR source onto
    the LR grid (extended by its context margin), NaN cells filled with conditioning_fill."""
    keys = config.dynamic if keys is None else keys
    log.info("regridding %s from %s (%s)", ", ".join(keys), lr.path.name, lr.config.method)
    reason = f"have no valid value after {lr.config.method} regridding of {lr.path.name}"
    return np.stack(
        [_filled(lr.regridded(specs[k], times), k, config, lr.path, reason) for k in keys], axis=1
    )


def _add_context(dataset: xr.Dataset, context: np.ndarray | None, lr: LRSource) -> None:
    """Store the predictors over the context region as `cond_context` with its own coordinates."""
    assert context is not None
    dataset[CONTEXT_ARRAY] = (("time", "dynamic_var", "y_ctx", "x_ctx"), context)
    for name, (dims, values) in context_coordinates(lr.target).items():
        dataset.coords[name] = (dims, values)
    dataset[CONTEXT_ARRAY].encoding["chunks"] = (
        dataset["cond_dynamic"].encoding["chunks"][:2] + context.shape[2:]
    )
    log.info(
        "stored the LR context region: %dx%d LR cells (margin %d around the %dx%d LR grid)",
        *context.shape[2:],
        lr.margin,
        *dataset["cond_dynamic"].shape[2:],
    )


def build_inference_dataset(config: DataBuildConfig, run: RunContext) -> None:
    """An LR-only source on a training dataset's grid: no target, every time step in split 'test'."""
    assert config.reference is not None
    reference = open_reference(config.reference)
    config = check_variables(config, reference)
    assert config.lr_source is not None
    registry = VariableRegistry.load(config.variables_file, embedded=reference.manifest.registry)
    specs = _specs(config, registry)
    unknown_fill = sorted(set(config.conditioning_fill) - set(config.dynamic))
    if unknown_fill:
        raise InputDataError(f"conditioning_fill names {unknown_fill}, which are not dynamic variables")
    grid, factor = reference.grid, reference.factor
    lr = open_lr_source(config.lr_source, grid, factor)
    times = lr.times
    split = np.full(len(times), SPLIT_CODES[INFERENCE_SPLIT], dtype=np.int8)
    context = _regridded_predictors(lr, config, specs, times)
    dynamic = interior(context, lr.margin)
    n_lat, n_lon = grid.lat.shape
    # No truth: the target array is all NaN (the fill value, so Zarr stores no chunk of it) and readers
    # handle it as a target whose every cell is masked.
    target = np.broadcast_to(np.float32(np.nan), (len(times), len(config.target), n_lat, n_lon))
    dataset = _as_xarray(config, times, split, grid, factor, target, dynamic, reference.statics)
    if lr.margin:
        _add_context(dataset, context, lr)
    grid_info = reference.manifest.grid.model_copy(
        update={"lr_method": "regridded", "lr_regrid_method": lr.config.method, "context_margin": lr.margin}
    )
    conversions = lr.conversions
    manifest = DatasetManifest(
        producer=run.producer(),
        target=reference.manifest.target,
        dynamic=[_ref(specs[k], conversions) for k in config.dynamic],
        static=reference.manifest.static,
        registry=registry.entries(specs),
        grid=grid_info,
        splits={INFERENCE_SPLIT: _time_range(times)},
        time_step_hours=_time_step_hours(times),
        calendar=calendar_of(times),
        n_times=len(times),
        sources=[
            describe_source(reference.path, ["cond_static"], role="reference"),
            *lr.provenance([specs[k] for k in config.dynamic]),
        ],
        has_target=False,
    )
    _log_conversions(conversions)
    write_zarr_artifact(dataset, manifest, config.output)
    run.log_metrics({"n_times_test": float(len(times)), "hr_height": n_lat, "hr_width": n_lon})
    log.info(
        "wrote %s (inference: %d time steps in split '%s', no target; grid, statics and factor %d from %s)",
        config.output,
        len(times),
        INFERENCE_SPLIT,
        factor,
        reference.path,
    )


def _time_range(times: TimeIndex) -> SplitRange:
    return SplitRange(start=to_datetime_or_iso(times[0]), end=to_datetime_or_iso(times[-1]))


def _split_dates(times: TimeIndex, name: str, date_range: DateRange) -> tuple[Any, Any]:
    """The split's start and end read in the calendar of the time axis; a date it lacks names the field."""
    bounds = []
    for which in ("start", "end"):
        try:
            bounds.append(date_in(times, getattr(date_range, which)))
        except ValueError as exc:
            raise ConfigError(
                f"splits.{name}.{which}: {exc}; give a date of the source's {calendar_of(times)} calendar"
            ) from None
    return bounds[0], bounds[1]


def _split_ranges(times: TimeIndex, splits: SplitsConfig) -> dict[str, SplitRange]:
    ranges = {}
    for name, date_range in splits.items():
        start, end = _split_dates(times, name, date_range)
        ranges[name] = SplitRange(start=to_datetime_or_iso(start), end=to_datetime_or_iso(end))
    return ranges


def _split_codes(times: TimeIndex, splits: SplitsConfig, path: object) -> np.ndarray:
    codes = np.full(len(times), -1, dtype=np.int8)
    for name, date_range in splits.items():
        start, end = _split_dates(times, name, date_range)
        inside = np.asarray((times >= start) & (times <= end))
        if not inside.any():
            raise InputDataError(
                f"{path}: split '{name}' ({iso(start)} to {iso(end)}) selects no time step; the data covers "
                f"{iso(times[0])} to {iso(times[-1])} ({calendar_of(times)} calendar); fix splits.{name}"
            )
        codes[inside] = SPLIT_CODES[name]
    return codes


def _time_step_hours(times: TimeIndex) -> float:
    if len(times) < 2:
        return 1.0
    return float(np.median(np.diff(elapsed_seconds(times))) / 3600.0)


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
    times: TimeIndex,
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
