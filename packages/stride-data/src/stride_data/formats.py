"""What a source really is, from its first bytes or its directory layout (never its extension), and its engine.

The engine is always named when opening: with cfgrib installed, letting xarray probe every backend crashed the
interpreter at exit on this project's machines (see the data README), and probing also hides what a file is.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Literal

from stride_core.errors import InputDataError

Format = Literal["netcdf4", "netcdf3", "grib", "zarr"]
Engine = Literal["auto", "h5netcdf", "netcdf4", "scipy", "zarr", "cfgrib"]

DESCRIPTION: dict[Format, str] = {
    "netcdf4": "a NetCDF-4 (HDF5) file",
    "netcdf3": "a classic NetCDF file",
    "grib": "a GRIB file",
    "zarr": "a Zarr store",
}
ENGINES: dict[Format, tuple[str, ...]] = {
    # First choice first; h5netcdf is installed with stride-core, netCDF4 only if the user adds it.
    "netcdf4": ("h5netcdf", "netcdf4"),
    "netcdf3": ("netcdf4", "scipy"),
    "grib": ("cfgrib",),
    "zarr": ("zarr",),
}
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
# HDF5 allows a user block before the superblock, so the signature may sit at 0, 512, 1024, 2048, ...
HDF5_OFFSETS = (0, 512, 1024, 2048, 4096)
# A GRIB message may follow a short WMO bulletin header; eccodes scans for the "GRIB" marker.
GRIB_SCAN_BYTES = 1024
GRIB_EXTRA = "pip install 'stride-data[grib]'"


def detect_format(path: Path) -> Format:
    """The source format from the content: HDF5/NetCDF/GRIB signatures, or a Zarr store's metadata files."""
    if path.is_dir():
        if any((path / name).is_file() for name in ("zarr.json", ".zgroup", ".zarray", ".zmetadata")):
            return "zarr"
        raise InputDataError(
            f"{path}: is a directory without Zarr metadata (zarr.json or .zgroup); point the source at a "
            f"NetCDF, GRIB or Zarr source"
        )
    with path.open("rb") as handle:
        head = handle.read(max(HDF5_OFFSETS) + len(HDF5_SIGNATURE))
    if any(head[offset : offset + len(HDF5_SIGNATURE)] == HDF5_SIGNATURE for offset in HDF5_OFFSETS):
        return "netcdf4"
    if head[:3] == b"CDF" and head[3:4] in (b"\x01", b"\x02", b"\x05"):
        return "netcdf3"
    if b"GRIB" in head[:GRIB_SCAN_BYTES]:
        return "grib"
    raise InputDataError(
        f"{path}: is not a NetCDF, GRIB or Zarr source (it starts with {head[:16]!r}); check the file "
        f"(a failed download or an HTML error page?) or point the source at the right one"
    )


def choose_engine(path: Path, requested: Engine) -> tuple[Format, str]:
    """The format of `path` and the xarray engine to open it with; `requested` must suit the content."""
    found = detect_format(path)
    if requested != "auto":
        if requested not in ENGINES[found]:
            raise InputDataError(
                f"{path}: is {DESCRIPTION[found]}, which engine '{requested}' cannot read; remove the source's "
                f"engine setting (auto detects it) or set it to one of {', '.join(ENGINES[found])}"
            )
        return found, _available(path, found, requested)
    for engine in ENGINES[found]:
        if _installed(engine):
            return found, engine
    return found, _available(path, found, ENGINES[found][-1])


def _installed(engine: str) -> bool:
    module = {
        "h5netcdf": "h5netcdf",
        "netcdf4": "netCDF4",
        "scipy": "scipy",
        "cfgrib": "cfgrib",
        "zarr": "zarr",
    }
    return importlib.util.find_spec(module[engine]) is not None


def _available(path: Path, found: Format, engine: str) -> str:
    if _installed(engine):
        return engine
    if found == "grib":
        raise InputDataError(f"{path}: is a GRIB file; reading GRIB needs the optional extra: {GRIB_EXTRA}")
    raise InputDataError(
        f"{path}: is {DESCRIPTION[found]}; its engine '{engine}' is not installed; pip install {engine}"
    )
