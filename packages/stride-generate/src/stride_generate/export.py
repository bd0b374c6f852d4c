"""`stride-generate export`: samples.zarr as a CF-1.8 NetCDF file (members on a `realization` dimension).

Per target variable V: `V` [time, realization, y, x] (the members), `V_pmm`, `V_mean`, `V_std` [time, y, x]
with `cell_methods` saying how they reduce the realizations, units from the manifest, the grid's coordinates
(lat/lon, or projected x/y with a `crs` grid-mapping variable from pyproj's CRS.to_cf) and the provenance
(manifest, producer, inputs) in global attributes. The time axis keeps the store's calendar: xarray's CF
encoding writes cftime dates with their own `calendar` attribute. Written with h5netcdf (NetCDF-4 on HDF5,
no C netCDF library needed), atomically.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import xarray as xr
from pydantic import Field

from stride_contracts import SamplesManifest
from stride_core.artifacts import open_zarr_artifact
from stride_core.atomic import atomic_output
from stride_core.config import StrictConfig
from stride_core.progress import get_logger
from stride_core.tracking import RunContext

log = get_logger("stride-generate")

REDUCTIONS = {
    "pmm": ("probability-matched ensemble mean (Ebert 2001)", "realization: mean (probability matched)"),
    "mean": ("ensemble mean", "realization: mean"),
    "std": ("ensemble standard deviation (ddof 1)", "realization: standard_deviation"),
}


class ExportConfig(StrictConfig):
    """Export a samples store to another format."""

    samples: Path = Field(description="samples.zarr from stride-generate")
    output: Path = Field(default=Path("samples.nc"), description="output file")
    format: Literal["netcdf"] = Field(default="netcdf", description="CF-1.8 NetCDF-4")


def _coordinates(samples: xr.Dataset, manifest: SamplesManifest) -> tuple[dict[str, Any], str | None]:
    coords: dict[str, Any] = {}
    for name, standard, units in (("lat", "latitude", "degrees_north"), ("lon", "longitude", "degrees_east")):
        if name in samples.coords:
            coords[name] = xr.Variable(
                samples[name].dims, samples[name].values, {"standard_name": standard, "units": units}
            )
    mapping = None
    crs = manifest.grid.crs
    if manifest.grid.kind == "projected" and crs:
        from pyproj import CRS

        for name in ("x", "y"):
            if name in samples.coords:
                coords[name] = xr.Variable(
                    (name,),
                    samples[name].values,
                    {"standard_name": f"projection_{name}_coordinate", "units": "m", "axis": name.upper()},
                )
        mapping = "crs"
        projection = CRS.from_user_input(crs)
        # to_cf is empty for projections CF cannot name (e.g. EPSG:28992); crs_wkt still defines them.
        attrs = projection.to_cf() or {"crs_wkt": projection.to_wkt()}
        if "grid_mapping_name" not in attrs:
            log.warning("CF has no grid_mapping_name for %s; the crs variable carries its WKT only", crs)
        coords[mapping] = xr.Variable((), np.int32(0), {"long_name": "coordinate reference system", **attrs})
    return coords, mapping


def samples_to_cf(samples: xr.Dataset, manifest: SamplesManifest, source: Path) -> xr.Dataset:
    """The CF view of a samples store (lazy: arrays are read when written)."""
    coords, mapping = _coordinates(samples, manifest)
    auxiliary = " ".join(name for name in ("lat", "lon") if name in coords and samples[name].ndim == 2)
    data: dict[str, xr.Variable] = {}
    for index, ref in enumerate(manifest.target):
        base = {"units": ref.units, "long_name": ref.name}
        if mapping:
            base["grid_mapping"] = mapping
        if auxiliary:
            base["coordinates"] = auxiliary
        members = samples["members"].isel(var=index).rename(member="realization")
        data[ref.name] = xr.Variable(
            members.dims,
            members.data,
            {**base, "long_name": f"{ref.name} ensemble members", "cell_methods": "time: point"},
        )
        for array, (title, method) in REDUCTIONS.items():
            if array not in samples:
                continue
            field = samples[array].isel(var=index)
            data[f"{ref.name}_{array}"] = xr.Variable(
                field.dims,
                field.data,
                {**base, "long_name": f"{ref.name} {title}", "cell_methods": f"time: point {method}"},
            )
    realization = xr.Variable(
        ("realization",),
        np.arange(samples.sizes["member"], dtype=np.int32),
        {"standard_name": "realization", "long_name": "ensemble member", "units": "1"},
    )
    time = samples["time"]
    dataset = xr.Dataset(
        data,
        coords={"time": time.variable.to_base_variable(), "realization": realization, **coords},
    )
    dataset["time"].attrs.update({"standard_name": "time", "axis": "T"})
    dataset["time"].encoding.update({k: v for k, v in time.encoding.items() if k in ("units", "calendar")})
    # CF-1.8 has no 64-bit integers (NetCDF-4's int64 came with CF-1.9): times as doubles, and the 63-bit
    # seeds as their decimal strings (a double would round them).
    dataset["time"].encoding["dtype"] = "float64"
    dataset["seeds"] = xr.Variable(
        ("time", "realization"),
        samples["seeds"].values.astype(str).astype(object),
        {"long_name": "member seed (decimal integer, torch.Generator.manual_seed)"},
    )
    for name in ("time", "x", "y", "lat", "lon"):
        if name in dataset.coords:
            dataset[name].encoding["_FillValue"] = None  # CF: coordinates have no missing values
    dataset.attrs = {
        "Conventions": "CF-1.8",
        "title": "STRIDE downscaled ensemble",
        "source": f"stride-generate {manifest.model_kind} model (checkpoint step {manifest.checkpoint_step})",
        "history": f"{datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ} stride-generate export from {source}",
        "stride_seed_rule": manifest.seed_rule or "position-based (older store)",
        "stride_manifest": json.dumps(json.loads(manifest.model_dump_json())),
    }
    return dataset


def run_export(config: ExportConfig, run: RunContext) -> None:
    samples, manifest = open_zarr_artifact(config.samples, SamplesManifest, ("members", "seeds"))
    run.record_input("samples", config.samples, manifest)
    dataset = samples_to_cf(samples, manifest, config.samples)
    with atomic_output(config.output) as staging:
        dataset.to_netcdf(staging, engine="h5netcdf")
    log.info("wrote %s (CF-1.8 NetCDF)", config.output)
