"""Open a source file and check it holds what the config and the variable registry say."""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import xarray as xr

from stride_contracts.dataset import SourceFile
from stride_core.calendars import TimeIndex, iso, time_coder, time_index
from stride_core.data_root import resolve_data_path
from stride_core.errors import InputDataError
from stride_core.progress import get_logger
from stride_core.units import Conversion, conversion
from stride_core.variables import VariableSpec
from stride_data.formats import DESCRIPTION, Engine, choose_engine

UNIT_ALIASES = {"1": {"1", "", "fraction", "0-1", "(0 - 1)"}, "K": {"K", "kelvin"}}


def open_source(path: Path, engine: Engine = "auto", min_lead_hours: float = 0.0) -> tuple[xr.Dataset, Path]:
    """Open a NetCDF/GRIB/Zarr source with the engine its content calls for, naming the file in any failure.

    A GRIB forecast is put on its valid times; of several runs, each valid time takes the run with the shortest
    lead time of at least `min_lead_hours` (see `_freshest_run_per_valid_time`).
    """
    resolved = resolve_data_path(path)
    found, chosen = choose_engine(resolved, engine)
    try:
        if chosen == "zarr":
            with warnings.catch_warnings():
                # Source stores are often unconsolidated; xarray's fallback warning would only add noise.
                warnings.filterwarnings(
                    "ignore", "Failed to open Zarr store with consolidated", RuntimeWarning
                )
                return xr.open_zarr(resolved, decode_times=time_coder()), resolved
        if chosen == "cfgrib":
            # indexpath "": no .idx file beside the source (data folders are often read-only).
            grib = xr.open_dataset(resolved, engine="cfgrib", backend_kwargs={"indexpath": ""})
            return _valid_time_axis(grib, resolved, min_lead_hours), resolved
        # Times keep their calendar: datetime64 where it holds it, cftime dates (360_day, noleap, ...) else.
        return xr.open_dataset(resolved, engine=chosen, decode_times=time_coder()), resolved
    except InputDataError:
        raise
    except Exception as exc:
        raise InputDataError(
            f"{resolved}: looks like {DESCRIPTION[found]} but engine '{chosen}' cannot read it "
            f"({type(exc).__name__}: {one_line(str(exc))}); check that the file is complete"
        ) from None


def one_line(text: str, limit: int = 300) -> str:
    """A library's message squeezed onto one line (errors are printed as one line)."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _valid_time_axis(dataset: xr.Dataset, path: Path, min_lead_hours: float) -> xr.Dataset:
    """cfgrib's `time` is the forecast reference time; STRIDE's `time` axis is the valid time."""
    if "valid_time" not in dataset.coords:
        return dataset
    if "step" in dataset.dims and "time" in dataset.dims:
        return _freshest_run_per_valid_time(dataset, path, min_lead_hours)
    if "step" in dataset.dims:
        dataset = dataset.swap_dims({"step": "valid_time"})
    elif "time" in dataset.dims:
        dataset = dataset.swap_dims({"time": "valid_time"})
    else:
        dataset = dataset.expand_dims("valid_time")
    return dataset.drop_vars(["time", "step"], errors="ignore").rename({"valid_time": "time"})


def _freshest_run_per_valid_time(dataset: xr.Dataset, path: Path, min_lead_hours: float) -> xr.Dataset:
    """Several forecast runs x lead times -> one field per valid time, from the run that is freshest there.

    The shortest lead is the best forecast of a valid time; `min_lead_hours` skips a model's spin-up. cfgrib
    fills the (run, lead) pairs a file lacks with NaN, so only pairs with data compete. The lead kept for each
    valid time is the coordinate `lead_hours`.
    """
    messages = dataset.stack(message=("time", "step"))
    lead_hours = messages["step"].values / np.timedelta64(1, "h")
    valid_times = messages["valid_time"].values
    spatial = [dim for dim in messages.dims if dim != "message"]
    has_data = np.zeros(messages.sizes["message"], dtype=bool)
    for name in messages.data_vars:
        has_data |= messages[name].notnull().any(dim=[d for d in spatial if d in messages[name].dims]).values
    candidates = np.flatnonzero(has_data & (lead_hours >= min_lead_hours))
    if candidates.size == 0:
        raise InputDataError(
            f"{path}: no forecast field with a lead time of at least {min_lead_hours:g} h (leads present: "
            f"{sorted(set(lead_hours[has_data].tolist()))} h); lower source.min_lead_hours"
        )
    # Sort by valid time then lead; the first message of each valid time is its freshest forecast.
    ordered = candidates[np.lexsort((lead_hours[candidates], valid_times[candidates]))]
    first = np.r_[True, valid_times[ordered][1:] != valid_times[ordered][:-1]]
    chosen = ordered[first]
    picked = messages.isel(message=chosen)
    result = picked.drop_vars(["message", "time", "step", "valid_time"]).rename({"message": "time"})
    return result.assign_coords(
        time=("time", valid_times[chosen]),
        lead_hours=("time", lead_hours[chosen], {"units": "h", "long_name": "forecast lead time"}),
    ).transpose("time", ...)


def open_sources(
    paths: list[Path], engine: Engine = "auto", min_lead_hours: float = 0.0
) -> tuple[xr.Dataset, list[Path], Path]:
    """Open one source, or several files on one grid merged; also returns a label for messages.

    Files holding the same variables are pieces of one record and are joined along time (e.g. one file per
    month). Files holding different variables are merged side by side (e.g. one file per ERA5 variable, and an
    invariants file whose orography and land-sea mask have no time or a single time step).
    """
    opened = [open_source(path, engine, min_lead_hours) for path in paths]
    files = [path for _, path in opened]
    if len(opened) == 1:
        return opened[0][0], files, files[0]
    label = Path(", ".join(path.name for path in files))
    groups: dict[frozenset[str], list[tuple[xr.Dataset, Path]]] = {}
    for dataset, path in opened:
        groups.setdefault(frozenset(map(str, dataset.data_vars)), []).append((dataset, path))
    pieces = [_along_time(group) for group in groups.values()]
    if len(pieces) == 1:
        return pieces[0], files, label
    return _side_by_side(pieces, groups, label), files, label


def _along_time(group: list[tuple[xr.Dataset, Path]]) -> xr.Dataset:
    """Files with the same variables joined along time; the same step in two files is an error."""
    if len(group) == 1:
        return group[0][0]
    label = Path(", ".join(path.name for _, path in group))
    for dataset, path in group:
        if "time" not in dataset.dims:
            raise InputDataError(f"{path}: no 'time' dimension; only files with time steps can be merged")
    try:
        # join="exact": files on different grids are an error, never silently aligned or reindexed.
        merged = xr.concat(
            [dataset for dataset, _ in group],
            dim="time",
            data_vars="minimal",
            coords="minimal",
            compat="override",
            join="exact",
        )
    except ValueError as exc:
        raise InputDataError(
            f"{label}: these files cannot be merged along time ({one_line(str(exc))}); they must share one grid"
        ) from None
    times = merged["time"].values
    if len(np.unique(times)) != len(times):
        raise InputDataError(f"{label}: some time steps appear in more than one file; remove the overlap")
    return merged


def _side_by_side(
    pieces: list[xr.Dataset], groups: dict[frozenset[str], list[tuple[xr.Dataset, Path]]], label: Path
) -> xr.Dataset:
    """Pieces holding different variables merged on one grid and one time axis."""
    seen: dict[str, str] = {}
    for names, group in groups.items():
        where = ", ".join(path.name for _, path in group)
        for name in sorted(names):
            if name in seen:
                raise InputDataError(
                    f"{label}: variable '{name}' is in {seen[name]} and in {where}, which hold different "
                    f"variables; give each variable's files only once"
                )
            seen[name] = where
    timed = [piece for piece in pieces if piece.sizes.get("time", 0) > 1]
    # Invariants (orography, land-sea mask) often come with one time step: beside time series they are static.
    pieces = [
        piece.isel(time=0, drop=True) if timed and piece.sizes.get("time", 0) == 1 else piece
        for piece in pieces
    ]
    try:
        return xr.merge(pieces, join="exact", compat="override", combine_attrs="drop_conflicts")
    except ValueError as exc:
        raise InputDataError(
            f"{label}: files with different variables cannot be merged ({one_line(str(exc))}); they must share "
            f"one grid and the same time steps"
        ) from None


def select_variable(
    dataset: xr.Dataset,
    spec: VariableSpec,
    path: Path,
    name: str | None = None,
    name_field: str | None = None,
) -> xr.DataArray:
    """The source variable behind a registry entry, with its units checked against the registry.

    `name` overrides the registry's data_name (set by the config field `name_field`, which errors then name).
    """
    data_name = name or spec.data_name
    fix = f"fix {name_field}" if name_field else "fix the config or the registry's data_name"
    if data_name not in dataset.data_vars:
        raise InputDataError(
            f"{path}: has no variable '{data_name}' ({name_field or 'data_name'} of '{spec.key}'); present: "
            f"{sorted(map(str, dataset.data_vars))}; {fix}"
        )
    array = dataset[data_name]
    unit_conversion(array, spec, path)
    return array


def unit_conversion(array: xr.DataArray, spec: VariableSpec, path: Path) -> Conversion | None:
    """How to bring `array` to the registry's units: None when they already agree, else the conversion.

    Units that no unambiguous conversion relates (stride_core.units) are an error naming both.
    """
    units = str(array.attrs.get("units", ""))
    if units in UNIT_ALIASES.get(spec.units, {spec.units}):
        return None
    found = conversion(units, spec.units, spec.groups)
    if found is None:
        raise InputDataError(
            f"{path}: variable '{array.name}' has units '{units}', the registry expects '{spec.units}' for "
            f"'{spec.key}' and no unambiguous conversion relates them; convert the source or override the units "
            f"in a variables file"
        )
    return None if found.scale == 1.0 and found.offset == 0.0 else found


def source_times(dataset: xr.Dataset, path: Path) -> TimeIndex:
    """The source's time axis in its own calendar (stride_core.calendars); undecodable times name the file."""
    if "time" not in dataset.coords and "time" not in dataset.dims:
        raise InputDataError(f"{path}: no 'time' coordinate (dims: {list(dataset.dims)})")
    try:
        return time_index(dataset["time"])
    except TypeError as exc:
        raise InputDataError(f"{path}: {exc}") from None


DuplicateTimes = Literal["error", "keep_first"]


def unique_times(dataset: xr.Dataset, path: Path, policy: DuplicateTimes, field: str) -> xr.Dataset:
    """Refuse a time axis with repeated stamps (a doubled hour would be trained on twice and break time
    windows), or, when asked, keep the first field of each stamp (in file order: sortby is stable)."""
    stamps = pd.Index(source_times(dataset, path))
    repeated = stamps.duplicated(keep="first")
    if not repeated.any():
        return dataset
    which = stamps[repeated].unique()
    shown = ", ".join(iso(stamp) for stamp in which[:5]) + (
        f" and {len(which) - 5} more" if len(which) > 5 else ""
    )
    if policy == "error":
        raise InputDataError(
            f"{path}: {int(repeated.sum())} repeated time stamp(s): {shown}; remove them from the source, or set "
            f"{field}: keep_first to keep the first field of each stamp"
        )
    get_logger("stride-data").warning(
        "%s: kept the first field of each repeated time stamp (%s)", path, shown
    )
    return dataset.isel(time=np.flatnonzero(~repeated))


def check_finite_somewhere(values: np.ndarray, what: str, path: Path) -> None:
    if not np.isfinite(values).any():
        raise InputDataError(
            f"{path}: {what} is entirely NaN in the selected region and times; choose another region or splits"
        )


def describe_source(
    path: Path, variables: list[str], role: Literal["hr", "lr", "reference"] = "hr"
) -> SourceFile:
    """Provenance record: size and SHA-256 of the file (or of a Zarr store's metadata)."""
    digest = hashlib.sha256()
    if path.is_dir():
        for member in sorted(p for p in path.rglob("*") if p.is_file() and p.name.startswith(("zarr", "."))):
            digest.update(member.read_bytes())
        size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    else:
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        size = path.stat().st_size
    return SourceFile(
        path=str(path.resolve()), size_bytes=size, sha256=digest.hexdigest(), variables=variables, role=role
    )
