"""Open a source file and check it holds what the config and the variable registry say."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import xarray as xr

from stride_contracts.dataset import SourceFile
from stride_core.data_root import resolve_data_path
from stride_core.errors import InputDataError
from stride_core.variables import VariableSpec

UNIT_ALIASES = {"1": {"1", "", "fraction", "0-1", "(0 - 1)"}, "K": {"K", "kelvin"}}


def open_source(path: Path, engine: str) -> tuple[xr.Dataset, Path]:
    """Open a NetCDF/Zarr source, naming the file in any failure."""
    resolved = resolve_data_path(path)
    try:
        if engine == "zarr":
            return xr.open_zarr(resolved), resolved
        return xr.open_dataset(resolved, engine=engine), resolved
    except Exception as exc:
        raise InputDataError(
            f"{resolved}: cannot be opened with engine '{engine}' ({type(exc).__name__}: {exc}); "
            f"is it really a {'Zarr store' if engine == 'zarr' else 'NetCDF-4 file'}?"
        ) from None


def open_sources(paths: list[Path], engine: str) -> tuple[xr.Dataset, list[Path], Path]:
    """Open one source, or several on the same grid merged along time; also returns a label for messages."""
    opened = [open_source(path, engine) for path in paths]
    files = [path for _, path in opened]
    if len(opened) == 1:
        return opened[0][0], files, files[0]
    label = Path(", ".join(path.name for path in files))
    for dataset, path in opened:
        if "time" not in dataset.dims:
            raise InputDataError(f"{path}: no 'time' dimension; only files with time steps can be merged")
    try:
        # join="exact": files on different grids are an error, never silently aligned or reindexed.
        merged = xr.concat(
            [d for d, _ in opened],
            dim="time",
            data_vars="minimal",
            coords="minimal",
            compat="override",
            join="exact",
        )
    except ValueError as exc:
        raise InputDataError(
            f"{label}: these files cannot be merged along time ({exc}); they must share one grid"
        ) from None
    times = merged["time"].values
    if len(np.unique(times)) != len(times):
        raise InputDataError(f"{label}: some time steps appear in more than one file; remove the overlap")
    return merged, files, label


def select_variable(dataset: xr.Dataset, spec: VariableSpec, path: Path) -> xr.DataArray:
    """The source variable behind a registry entry, with its units checked."""
    if spec.data_name not in dataset.data_vars:
        raise InputDataError(
            f"{path}: has no variable '{spec.data_name}' (data_name of '{spec.key}'); present: "
            f"{sorted(map(str, dataset.data_vars))}; fix the config or the registry's data_name"
        )
    array = dataset[spec.data_name]
    units = str(array.attrs.get("units", ""))
    if units not in UNIT_ALIASES.get(spec.units, {spec.units}):
        raise InputDataError(
            f"{path}: variable '{spec.data_name}' has units '{units}', the registry expects '{spec.units}' for "
            f"'{spec.key}'; convert the source or override the units in a variables file"
        )
    return array


def check_finite_somewhere(values: np.ndarray, what: str, path: Path) -> None:
    if not np.isfinite(values).any():
        raise InputDataError(
            f"{path}: {what} is entirely NaN in the selected region and times; choose another"
        )


def describe_source(path: Path, variables: list[str]) -> SourceFile:
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
        path=str(path.resolve()), size_bytes=size, sha256=digest.hexdigest(), variables=variables
    )
