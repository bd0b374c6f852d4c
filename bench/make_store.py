"""A synthetic, contract-valid dataset.zarr of several GB for the loader and stats benchmarks.

The store has one HR target (t2m-like by default: red-noise weather that drifts with a steady wind, a
diurnal and seasonal cycle, a lapse-rate term over the orography and small-scale noise; or precip-like:
the same kind of field thresholded, about two thirds zeros), its LR conditioning by conservative coarsening
(stride_core.grid, as stride-data does), orography and a land-sea mask, and hourly train/val/test splits.
Noise in the low mantissa bits keeps the compression ratio near that of real reanalysis floats.

It is written chunk by chunk through dask (a block of `--block` hours at a time, so memory stays at a few
blocks whatever the store size) with the project's own atomic writer: the store is built under a hidden
temporary name and renamed when complete. The name holds a hash of every parameter and of the chunk
layout, so a second call with the same settings reuses the store and different settings never clash.

    python bench/make_store.py                      # default: 512x512 t2m, 5760 hourly steps, 4.96 GB
    python bench/make_store.py --dir /data/bench --times 480 --min-gb 0   # a small one for a quick try
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import dask
import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr
import zarr

from stride_contracts import DatasetManifest, ProducerRef, SplitRange, VariableRef
from stride_contracts.dataset import DATASET_ARRAYS, GridInfo, SourceFile
from stride_core.artifacts import read_zarr_manifest, write_zarr_artifact
from stride_core.errors import ArtifactError
from stride_core.grid import coarsen_conservative, coarsen_coordinate, latitude_area_weights

BENCH_ATTR = "stride_bench"
"""Root attribute holding the generator parameters; a store is reused only when they match exactly."""
FALLBACK_TILE = 128
"""HR (and LR) tile edge used when stride_core.chunking is not there: chunks (1, C, 128, 128)."""


@dataclass(frozen=True)
class StoreParams:
    variable: Literal["t2m", "precip"] = "t2m"
    hr: int = 512
    factor: int = 8
    times: int = 5760
    """Hourly steps: 240 days, split 70/15/15 % into train/val/test."""
    noise: float = 0.3
    """Standard deviation of the white small-scale noise, in the target's units (K or relative)."""
    seed: int = 0

    def key(self, chunks: dict[str, tuple[int, ...]]) -> str:
        # "format": bump it when the generator changes, so that old stores are not reused.
        text = json.dumps({"params": asdict(self), "chunks": chunks, "format": 1}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:10]


def default_dir() -> Path:
    return Path(os.environ.get("STRIDE_BENCH_DIR", "/tmp/stride-bench"))


def chunk_layout(params: StoreParams) -> tuple[dict[str, tuple[int, ...]], str]:
    """Zarr chunk shape of each array, and where it came from (stride-data's own rule when available)."""
    lr = params.hr // params.factor
    target_shape, dynamic_shape = (params.times, 1, params.hr, params.hr), (params.times, 1, lr, lr)
    whole = {"split": (params.times,)}
    try:
        from stride_core.chunking import dataset_chunks
    except ImportError:  # the module is new; keep the benchmark usable on a tree without it
        tile = FALLBACK_TILE
        return (
            {
                "target": (1, 1, min(tile, params.hr), min(tile, params.hr)),
                "cond_dynamic": (1, 1, min(tile, lr), min(tile, lr)),
                "cond_static": (2, params.hr, params.hr),
                **whole,
            },
            f"fallback (1, C, {tile}, {tile}) tiles: stride_core.chunking not found",
        )
    chunks = dataset_chunks(target_shape, dynamic_shape, (2, params.hr, params.hr))
    return (
        {
            "target": chunks.target,
            "cond_dynamic": chunks.cond_dynamic,
            "cond_static": chunks.cond_static,
            **whole,
        },
        "stride_core.chunking.dataset_chunks (defaults), as stride-data build",
    )


class RedNoise:
    """Fields with a k^slope power spectrum whose Fourier phases drift in time.

    The phase of wavenumber k at hour t is phi_k + 2 pi (k . u) t + w_k t: a uniform drift u (cells per hour)
    plus a slow random evolution w_k, so any hour can be computed alone (chunk by chunk, in any order) and
    consecutive hours are coherent like real weather. Normalised to zero mean and unit standard deviation.
    """

    def __init__(self, size: int, rng: np.random.Generator, slope: float = -3.0, drift: float = 3.0) -> None:
        ky = np.fft.fftfreq(size)[:, None]
        kx = np.fft.rfftfreq(size)[None, :]
        k = np.hypot(kx, ky)
        self.size = size
        self.amp = np.where(k > 0, np.maximum(k, 1.0 / size) ** (slope / 2), 0.0)
        self.phase = rng.uniform(0, 2 * np.pi, k.shape)
        angle = rng.uniform(0, 2 * np.pi)
        u = drift * np.array([np.sin(angle), np.cos(angle)])
        self.omega = 2 * np.pi * (ky * u[0] + kx * u[1]) + rng.normal(0, 0.05, k.shape) * k * size / 8
        self.scale = 1.0
        self.scale = float(self.at(0).std())

    def at(self, t: float) -> np.ndarray:
        spectrum = self.amp * np.exp(1j * (self.phase + self.omega * t))
        return (np.fft.irfft2(spectrum, s=(self.size, self.size)) / self.scale).astype(np.float32)


class Weather:
    """The target (physical units) of any block of hours, from fixed generators and statics."""

    def __init__(self, params: StoreParams, start: pd.Timestamp, orography: np.ndarray) -> None:
        rng = np.random.default_rng(params.seed)
        self.params, self.start, self.orography = params, start, orography
        self.large, self.small = RedNoise(params.hr, rng), RedNoise(params.hr, rng, slope=-2.0, drift=5.0)

    def block(self, first: int, count: int) -> np.ndarray:
        """[count, 1, H, W] float32 for hours first .. first + count - 1."""
        p = self.params
        out = np.empty((count, 1, p.hr, p.hr), np.float32)
        for i, t in enumerate(range(first, first + count)):
            rng = np.random.default_rng([p.seed, 1, t])  # per hour, so blocks are independent of each other
            noise = rng.standard_normal((p.hr, p.hr), dtype=np.float32)
            weather = 0.8 * self.large.at(t) + 0.2 * self.small.at(t)
            when = self.start + pd.Timedelta(hours=t)
            if p.variable == "t2m":
                season = -6 * np.cos(2 * np.pi * (when.day_of_year - 20) / 365.25)
                diurnal = 3 * np.sin(2 * np.pi * (when.hour - 9) / 24)
                out[i, 0] = 284 + season + diurnal + 5 * weather - 0.0065 * self.orography + p.noise * noise
            else:
                wet = np.maximum(weather - 0.45, 0)
                out[i, 0] = np.where(wet > 0, 2.5 * wet**1.5 * np.exp(p.noise * noise), 0)
        return out


def statics(params: StoreParams) -> np.ndarray:
    """[2, H, W]: orography in metres (0 at sea) and land-sea mask (1 on land)."""
    land = RedNoise(params.hr, np.random.default_rng([params.seed, 2]), slope=-3.5).at(0)
    lsm = (land > -0.3).astype(np.float32)
    orography = np.where(lsm > 0, 450 * (land + 0.3), 0).astype(np.float32)
    return np.stack([orography, lsm])


def build_dataset(params: StoreParams, block: int) -> tuple[xr.Dataset, DatasetManifest]:
    """The whole store as a lazy dataset: each dask block of `block` hours is generated when written."""
    p, lr = params, params.hr // params.factor
    times = pd.date_range("2021-01-01", periods=p.times, freq="h")
    lat = np.linspace(60.0, 45.0, p.hr)
    lon = np.linspace(-10.0, 5.0, p.hr)
    static = statics(p)
    weather = Weather(p, times[0], static[0])
    weights = np.broadcast_to(latitude_area_weights(lat)[:, None], (p.hr, p.hr))

    starts = range(0, p.times, block)
    target_blocks = [
        da.from_delayed(
            dask.delayed(weather.block)(first, min(block, p.times - first)),
            shape=(min(block, p.times - first), 1, p.hr, p.hr),
            dtype=np.float32,
        )
        for first in starts
    ]
    target = da.concatenate(target_blocks, axis=0)
    # Coarsened from the same blocks, so each block is generated once and both arrays are written from it.
    dynamic = target.map_blocks(
        lambda x: coarsen_conservative(x, p.factor, weights),
        chunks=(target.chunks[0], (1,), (lr,), (lr,)),
        dtype=np.float32,
    )
    n_train, n_val = int(p.times * 0.7), int(p.times * 0.15)
    split = np.repeat(np.array([0, 1, 2], np.int8), [n_train, n_val, p.times - n_train - n_val])
    dataset = xr.Dataset(
        {
            "target": (("time", "target_var", "y", "x"), target),
            "cond_dynamic": (("time", "dynamic_var", "y_lr", "x_lr"), dynamic),
            "cond_static": (("static_var", "y", "x"), static),
            "split": (("time",), split),
        },
        coords={
            "time": times.values,
            "target_var": np.array([p.variable], dtype=object),
            "dynamic_var": np.array([p.variable], dtype=object),
            "static_var": np.array(["orography", "lsm"], dtype=object),
            "lat": ("y", lat),
            "lon": ("x", lon),
            "lat_lr": ("y_lr", coarsen_coordinate(lat, p.factor)),
            "lon_lr": ("x_lr", coarsen_coordinate(lon, p.factor)),
        },
    )
    units = "K" if p.variable == "t2m" else "mm h-1"
    bounds = [0, n_train, n_train + n_val, p.times]
    manifest = DatasetManifest(
        producer=ProducerRef(tool="bench/make_store.py", stride_version="0", created_utc=datetime.now(UTC)),
        target=[VariableRef(name=p.variable, units=units)],
        dynamic=[VariableRef(name=p.variable, units=units)],
        static=[VariableRef(name="orography", units="m"), VariableRef(name="lsm", units="1")],
        grid=GridInfo(hr_shape=(p.hr, p.hr), lr_shape=(lr, lr), factor=p.factor, lat_descending=True),
        splits={
            name: SplitRange(start=times[bounds[i]], end=times[bounds[i + 1] - 1])
            for i, name in enumerate(("train", "val", "test"))
        },
        time_step_hours=1.0,
        n_times=p.times,
        sources=[
            SourceFile(
                path="synthetic (bench/make_store.py)", size_bytes=0, sha256="0" * 64, variables=[p.variable]
            )
        ],
    )
    return dataset, manifest


def disk_bytes(path: Path) -> int:
    """Bytes the store occupies on disk (allocated blocks, like du), over every file under it."""
    return sum(
        os.stat(os.path.join(root, name)).st_blocks * 512
        for root, _, names in os.walk(path)
        for name in names
    )


def raw_bytes(path: Path) -> int:
    """Uncompressed bytes of every array in the store."""
    group = zarr.open_group(path, mode="r")
    return sum(array.nbytes for _, array in group.arrays())


def describe(path: Path) -> dict[str, Any]:
    on_disk, raw = disk_bytes(path), raw_bytes(path)
    group = zarr.open_group(path, mode="r")
    arrays = dict(group.arrays())
    bench: dict[str, Any] = dict(group.attrs.asdict().get(BENCH_ATTR) or {})  # type: ignore[arg-type]
    return {
        "path": str(path),
        "store_bytes": on_disk,
        "store_gb": on_disk / 1e9,
        "raw_gb": raw / 1e9,
        "compression_ratio": raw / on_disk,
        "files": sum(len(names) for _, _, names in os.walk(path)),
        "chunks": {name: list(arrays[name].chunks) for name in DATASET_ARRAYS},
        "shapes": {name: list(arrays[name].shape) for name in DATASET_ARRAYS},
        "compressors": {name: repr(arrays[name].compressors) for name in DATASET_ARRAYS},
        "params": bench.get("params"),
        "chunk_source": bench.get("chunk_source"),
    }


def existing(path: Path, attrs: dict[str, Any]) -> bool:
    """Whether `path` is a complete store made with exactly these parameters (atomic writes: complete if there)."""
    if not path.exists():
        return False
    try:
        read_zarr_manifest(path, DatasetManifest)
        found = zarr.open_group(path, mode="r").attrs.asdict().get(BENCH_ATTR)
    except (ArtifactError, OSError):
        return False
    return bool(found == attrs)


def ensure_store(
    params: StoreParams, directory: Path, *, block: int = 24, quiet: bool = False
) -> tuple[Path, dict[str, Any]]:
    """The store for `params` under `directory`, written first if it is not there yet; and its description."""
    chunks, chunk_source = chunk_layout(params)
    path = directory / f"dataset-{params.variable}-{params.hr}-{params.times}-{params.key(chunks)}.zarr"
    attrs = json.loads(json.dumps({"params": asdict(params), "chunks": chunks, "chunk_source": chunk_source}))
    if existing(path, attrs):
        if not quiet:
            print(f"reusing {path}", file=sys.stderr)
        return path, describe(path)
    dataset, manifest = build_dataset(params, block)
    dataset.attrs[BENCH_ATTR] = attrs
    for name, shape in chunks.items():
        dataset[name].encoding["chunks"] = shape
    if not quiet:
        print(
            f"writing {path} ({params.times} steps of {params.hr}x{params.hr}, chunks {chunks['target']}, "
            f"{chunk_source})",
            file=sys.stderr,
        )
    start = time.perf_counter()
    with dask.config.set(scheduler="threads"):
        write_zarr_artifact(dataset, manifest, path)
    info = describe(path)
    info["write_s"] = time.perf_counter() - start
    if not quiet:
        print(f"wrote {info['store_gb']:.2f} GB in {info['write_s']:.0f} s", file=sys.stderr)
    return path, info


def add_store_arguments(parser: argparse.ArgumentParser) -> None:
    """The store's parameters, shared by the benchmarks that use it."""
    defaults = StoreParams()
    parser.add_argument(
        "--dir", type=Path, default=default_dir(), help="where stores live ($STRIDE_BENCH_DIR)"
    )
    parser.add_argument("--variable", choices=("t2m", "precip"), default=defaults.variable)
    parser.add_argument("--hr", type=int, default=defaults.hr, help="HR grid edge (cells)")
    parser.add_argument("--factor", type=int, default=defaults.factor, help="HR cells per LR cell")
    parser.add_argument("--times", type=int, default=defaults.times, help="hourly steps")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument(
        "--min-gb", type=float, default=4.0, help="refuse a store smaller than this on disk (default: 4)"
    )


def params_from(args: argparse.Namespace) -> StoreParams:
    return StoreParams(
        variable=args.variable, hr=args.hr, factor=args.factor, times=args.times, seed=args.seed
    )


def store_from(args: argparse.Namespace) -> tuple[Path, dict[str, Any]]:
    """ensure_store for the parsed arguments, refusing a store under --min-gb."""
    path, info = ensure_store(params_from(args), args.dir)
    if info["store_gb"] < args.min_gb:
        raise SystemExit(
            f"error: {path} is {info['store_gb']:.2f} GB on disk, under --min-gb {args.min_gb}; "
            f"raise --times or --hr"
        )
    return path, info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_store_arguments(parser)
    parser.add_argument("--block", type=int, default=24, help="hours generated per dask task (default: 24)")
    args = parser.parse_args(argv)
    path, info = ensure_store(params_from(args), args.dir, block=args.block)
    print(json.dumps(info, indent=2))
    if info["store_gb"] < args.min_gb:
        print(f"warning: {path} is under {args.min_gb} GB on disk", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
