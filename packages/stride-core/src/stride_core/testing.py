"""Small synthetic artifacts for the packages' unit tests (real data is for end-to-end tests and the demo)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from stride_contracts import DatasetManifest, ProducerRef, SplitRange, VariableRef
from stride_contracts.dataset import GridInfo, SourceFile
from stride_core.artifacts import write_zarr_artifact
from stride_core.calendars import canonical_calendar, to_datetime_or_iso
from stride_core.grid import coarsen_conservative, coarsen_coordinate, latitude_area_weights


def synthetic_field(n_times: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    """Smooth moving waves plus small-scale texture tied to a fixed 'orography', in kelvin."""
    rng = np.random.default_rng(seed)
    y, x = np.meshgrid(np.linspace(0, 2 * np.pi, height), np.linspace(0, 2 * np.pi, width), indexing="ij")
    texture = rng.normal(size=(height, width))
    phase = rng.uniform(0, 2 * np.pi, n_times)[:, None, None]
    return (280 + 3 * np.sin(x + phase) * np.cos(y) + 0.5 * texture).astype(np.float32)


def write_synthetic_dataset(
    path: Path,
    *,
    n_times: int = 48,
    height: int = 16,
    width: int = 24,
    factor: int = 4,
    nan_fraction: float = 0.0,
    calendar: str = "standard",
) -> DatasetManifest:
    """A contract-valid dataset.zarr: target t2m, its coarsened LR, orography and lsm, 24/12/12 h splits.

    `calendar` other than standard: the time axis holds cftime dates of that calendar (e.g. 360_day).
    """
    if calendar == "standard":
        times = pd.date_range("2020-01-01", periods=n_times, freq="h")
    else:
        times = xr.date_range("2020-01-01", periods=n_times, freq="h", calendar=calendar, use_cftime=True)
    lat = np.linspace(58, 50, height)
    lon = np.linspace(-10, 2, width)
    target = synthetic_field(n_times, height, width)[:, None]
    weights = np.broadcast_to(latitude_area_weights(lat)[:, None], (height, width))
    dynamic = coarsen_conservative(target, factor, weights)
    if nan_fraction:
        mask = np.random.default_rng(1).random((height, width)) < nan_fraction
        target[:, :, mask] = np.nan
    static = np.stack(
        [
            np.abs(synthetic_field(1, height, width, seed=2)[0] - 280) * 100,
            (np.arange(width) > width // 2)[None].repeat(height, 0).astype(np.float32),
        ]
    )
    n_train, n_val = n_times // 2, n_times // 4
    split = np.array([0] * n_train + [1] * n_val + [2] * (n_times - n_train - n_val), dtype=np.int8)
    dataset = xr.Dataset(
        {
            "target": (("time", "target_var", "y", "x"), target),
            "cond_dynamic": (("time", "dynamic_var", "y_lr", "x_lr"), dynamic),
            "cond_static": (("static_var", "y", "x"), static.astype(np.float32)),
            "split": (("time",), split),
        },
        coords={
            "time": times,
            "target_var": np.array(["t2m"], dtype=object),
            "dynamic_var": np.array(["t2m"], dtype=object),
            "static_var": np.array(["orography", "lsm"], dtype=object),
            "lat": ("y", lat),
            "lon": ("x", lon),
            "lat_lr": ("y_lr", coarsen_coordinate(lat, factor)),
            "lon_lr": ("x_lr", coarsen_coordinate(lon, factor)),
        },
    )
    bounds = [0, n_train, n_train + n_val, n_times]
    manifest = DatasetManifest(
        producer=ProducerRef(tool="synthetic", stride_version="0", created_utc=datetime.now(UTC)),
        target=[VariableRef(name="t2m", units="K")],
        dynamic=[VariableRef(name="t2m", units="K")],
        static=[VariableRef(name="orography", units="m"), VariableRef(name="lsm", units="1")],
        grid=GridInfo(
            hr_shape=(height, width),
            lr_shape=(height // factor, width // factor),
            factor=factor,
            lat_descending=True,
        ),
        splits={
            name: SplitRange(
                start=to_datetime_or_iso(times[bounds[i]]), end=to_datetime_or_iso(times[bounds[i + 1] - 1])
            )
            for i, name in enumerate(("train", "val", "test"))
        },
        time_step_hours=1.0,
        calendar=canonical_calendar(calendar),
        n_times=n_times,
        sources=[SourceFile(path="synthetic", size_bytes=0, sha256="0" * 64, variables=["t2m"])],
    )
    write_zarr_artifact(dataset, manifest, path)
    return manifest


def write_synthetic_stats(dataset_path: Path, stats_path: Path) -> None:
    """stats.parquet for a synthetic dataset, computed directly with numpy over its train split."""
    from stride_contracts import StatsManifest, StatsRow
    from stride_core.artifacts import open_zarr_artifact, write_parquet_artifact

    dataset, manifest = open_zarr_artifact(dataset_path, DatasetManifest)
    train = dataset.isel(time=np.flatnonzero(dataset["split"].values == 0))
    rows = []
    for role, array, refs in (
        ("target", train["target"], manifest.target),
        ("dynamic", train["cond_dynamic"], manifest.dynamic),
        ("static", dataset["cond_static"], manifest.static),
    ):
        for channel, ref in enumerate(refs):
            values = (
                np.asarray(array.values)[..., channel, :, :] if role != "static" else array.values[channel]
            )
            valid = values[np.isfinite(values)].astype(np.float64)
            q = np.quantile(valid, [0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99])
            logged = np.log(valid + 0.01) if valid.min() >= 0 else None
            rows.append(
                StatsRow(
                    role=role,
                    variable=ref.name,
                    units=ref.units,
                    count=valid.size,
                    valid_fraction=valid.size / values.size,
                    mean=valid.mean(),
                    std=valid.std(),
                    min=valid.min(),
                    max=valid.max(),
                    q01=q[0],
                    q05=q[1],
                    q25=q[2],
                    q50=q[3],
                    q75=q[4],
                    q95=q[5],
                    q99=q[6],
                    log_mean=None if logged is None else logged.mean(),
                    log_std=None if logged is None else logged.std(),
                    log_eps=None if logged is None else 0.01,
                ).model_dump()
            )
    stats_manifest = StatsManifest(
        producer=ProducerRef(tool="synthetic", stride_version="0", created_utc=datetime.now(UTC)),
        n_times=train.sizes["time"],
    )
    write_parquet_artifact(pd.DataFrame(rows), stats_manifest, stats_path, StatsRow)
