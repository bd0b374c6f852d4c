"""Where the real sample data lives: `STRIDE_DATA`, defaulting to `../shared/data`."""

from __future__ import annotations

import os
from pathlib import Path

from stride_core.errors import InputDataError

DATA_ENV = "STRIDE_DATA"
DEFAULT_DATA_ROOT = Path("../shared/data")

PUBLIC_SOURCES = {
    "era5_uk_t2m_2019-03.nc": "t2m from pydata/xarray-data era5-2mt-2019-03-uk.grib; orography and lsm from "
    "kardaneh/IPSL-AID data/ERA5_const_sfc_variables.nc (Copernicus ERA5)",
    "radar_knmi_2010-08-26.nc": "pySTEPS/pysteps-data radar/KNMI/2010/08 (KNMI)",
    "radar_mch_2015-05-15.nc": "pySTEPS/pysteps-data radar/mch/20150515 (MeteoSwiss)",
}


def data_root() -> Path:
    """The data folder from `STRIDE_DATA`, or `../shared/data` relative to the working directory."""
    return Path(os.environ.get(DATA_ENV) or DEFAULT_DATA_ROOT)


def resolve_data_path(path: Path) -> Path:
    """Resolve a source path: absolute paths as given, relative ones under the data root."""
    resolved = path if path.is_absolute() else data_root() / path
    if resolved.exists():
        return resolved
    root = data_root()
    if not root.is_dir():
        raise InputDataError(
            f"{resolved}: data folder {root} does not exist; set {DATA_ENV} to the folder holding "
            f"{path.name} (public source: {PUBLIC_SOURCES.get(path.name, 'see ../shared/data/README.md')})"
        )
    raise InputDataError(
        f"{resolved}: source file not found in {root}; needed file {path.name} "
        f"(public source: {PUBLIC_SOURCES.get(path.name, 'see the data README')}); set {DATA_ENV} if it lives elsewhere"
    )
