"""Random-patch read speed of DownscalingDataset (lazy Zarr) under two chunk layouts of the same store.

`tiles`: stride_core.chunking.dataset_chunks (what stride-data build writes: 1 step x all variables x 128x128
tiles); `fields`: the former layout, 24 steps x whole fields. Writes two synthetic stores (HR 512x512, LR x4,
1 target, 1 dynamic, 2 statics, zstd) and times 128x128 HR crops with T=3 LR steps in one process.

    python bench/chunk_layout.py --times 2000 --samples 400
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime
from pathlib import Path

import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr

from stride_contracts import DatasetManifest, FeatureSpec, ProducerRef, SplitRange, VariableRef
from stride_contracts.checkpoint import TransformSet, VariableTransform, ZScoreSpec
from stride_contracts.dataset import GridInfo, SourceFile
from stride_core.artifacts import write_zarr_artifact
from stride_core.chunking import dataset_chunks
from stride_core.transforms import VariableTransforms
from stride_model.adapter import DownscalingDataset, StepBatchSampler, make_loader


def _field(block: np.ndarray, scale: int, block_info: dict | None = None) -> np.ndarray:
    assert block_info is not None
    first = block_info[None]["array-location"][0][0]
    count, _, height, width = block.shape
    out = np.empty((count, 1, height, width), np.float32)
    y, x = np.meshgrid(np.linspace(0, 6, height), np.linspace(0, 6, width), indexing="ij")
    for i in range(count):
        rng = np.random.default_rng(first + i)
        # Smooth waves plus noise rounded to 0.01 K: compresses roughly like real reanalysis floats.
        wave = 280 + 5 * scale * np.sin(x + 0.1 * (first + i)) * np.cos(y)
        out[i, 0] = np.round(wave + 0.3 * rng.standard_normal((height, width)), 2)
    return out


def write_store(path: Path, n_times: int, hr: int, factor: int, layout: str) -> None:
    lr = hr // factor
    times = pd.date_range("2020-01-01", periods=n_times, freq="h")
    shapes = {"target": (n_times, 1, hr, hr), "cond_dynamic": (n_times, 1, lr, lr)}
    if layout == "tiles":
        chunks = dataset_chunks(shapes["target"], shapes["cond_dynamic"], (2, hr, hr))
        chunk_of = {"target": chunks.target, "cond_dynamic": chunks.cond_dynamic}
    else:
        chunk_of = {name: (24, *shape[1:]) for name, shape in shapes.items()}
    target = da.zeros(shapes["target"], chunks=(24, 1, hr, hr), dtype=np.float32).map_blocks(
        _field, 1, dtype=np.float32
    )
    dynamic = da.zeros(shapes["cond_dynamic"], chunks=(24, 1, lr, lr), dtype=np.float32).map_blocks(
        _field, 1, dtype=np.float32
    )
    static = np.stack([np.linspace(0, 500, hr * hr).reshape(hr, hr), np.eye(hr)]).astype(np.float32)
    dataset = xr.Dataset(
        {
            "target": (("time", "target_var", "y", "x"), target),
            "cond_dynamic": (("time", "dynamic_var", "y_lr", "x_lr"), dynamic),
            "cond_static": (("static_var", "y", "x"), static),
            "split": (("time",), np.zeros(n_times, np.int8)),
        },
        coords={
            "time": times,
            "target_var": np.array(["t2m"], dtype=object),
            "dynamic_var": np.array(["t2m"], dtype=object),
            "static_var": np.array(["orography", "lsm"], dtype=object),
        },
    )
    for name, chunk in chunk_of.items():
        dataset[name] = dataset[name].chunk(dict(zip(dataset[name].dims, chunk, strict=True)))
        dataset[name].encoding["chunks"] = chunk
    manifest = DatasetManifest(
        producer=ProducerRef(tool="bench", stride_version="0", created_utc=datetime.now(UTC)),
        target=[VariableRef(name="t2m", units="K")],
        dynamic=[VariableRef(name="t2m", units="K")],
        static=[VariableRef(name="orography", units="m"), VariableRef(name="lsm", units="1")],
        grid=GridInfo(hr_shape=(hr, hr), lr_shape=(lr, lr), factor=factor, lat_descending=True),
        splits={"train": SplitRange(start=times[0], end=times[-1])},
        time_step_hours=1.0,
        n_times=n_times,
        sources=[SourceFile(path="synthetic", size_bytes=0, sha256="0" * 64, variables=["t2m"])],
    )
    write_zarr_artifact(dataset, manifest, path)


def transforms() -> VariableTransforms:
    def z(name: str, mean: float, std: float) -> VariableTransform:
        return VariableTransform(variable=name, transform=ZScoreSpec(mean=mean, std=std))

    return VariableTransforms(
        TransformSet(
            target=[z("t2m", 280, 5)],
            dynamic=[z("t2m", 280, 5)],
            static=[z("orography", 250, 150), z("lsm", 0, 1)],
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dir", type=Path, default=Path("/tmp/stride-chunk-bench"))
    parser.add_argument("--times", type=int, default=2000)
    parser.add_argument("--hr", type=int, default=512)
    parser.add_argument("--factor", type=int, default=4)
    parser.add_argument("--samples", type=int, default=400)
    parser.add_argument("--workers", type=int, default=0, help="also time make_loader with this many workers")
    args = parser.parse_args()
    features = FeatureSpec(temporal_steps=3)
    for layout in ("tiles", "fields"):
        path = args.dir / f"{layout}_{args.hr}_{args.times}.zarr"
        if not path.exists():
            start = time.perf_counter()
            write_store(path, args.times, args.hr, args.factor, layout)
            print(f"wrote {path} in {time.perf_counter() - start:.0f} s")
        size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e9
        dataset = DownscalingDataset(path, "train", transforms(), features, patch_shape=(128, 128), seed=0)
        keys = StepBatchSampler(len(dataset), args.samples, 1, seed=1).global_batch(0)
        dataset[keys[0]]
        start, cpu = time.perf_counter(), time.process_time()
        for key in keys:
            dataset[key]
        wall, cpu = (time.perf_counter() - start) / len(keys), (time.process_time() - cpu) / len(keys)
        # zarr's per-call floor: one read of a single cell, which touches one chunk.
        one_cell = [("target", (0, 0, slice(0, 1), slice(0, 1)))]
        start = time.perf_counter()
        for _ in range(200):
            dataset._reader.read(one_cell)
        floor = (time.perf_counter() - start) / 200
        line = (
            f"{layout:6s} {size:5.2f} GB  __getitem__: {1e3 * wall:6.2f} ms/sample wall = {1 / wall:5.0f}/s, "
            f"{1e3 * cpu:5.2f} ms CPU; one-cell zarr read {1e3 * floor:5.2f} ms"
        )
        if args.workers:
            sampler = StepBatchSampler(len(dataset), 32, args.samples // 32 + 2, seed=2)
            loader = iter(make_loader(dataset, sampler, args.workers))
            next(loader), next(loader)
            start = time.perf_counter()
            count = sum(len(batch["target"]) for batch in loader)
            line += f"; loader x{args.workers} workers: {count / (time.perf_counter() - start):6.0f}/s"
        print(line)


if __name__ == "__main__":
    main()
