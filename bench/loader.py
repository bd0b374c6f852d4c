"""Training samples/s of stride-model's data adapter against naive xarray loaders, on a >= 4 GB store.

All loaders produce the same contract-A batches of 128x128 HR crops with T=3 stacked LR steps (centred),
two statics and (sin, cos) of day-of-year and hour, z-scored, batch 32, through the same DataLoader with 2
worker processes and the same keys (StepBatchSampler, seed 0), so they read exactly the same samples; a few
samples are compared before timing to check that. The fast loader is `stride_model.adapter.DownscalingDataset`
(lazy Zarr reads of each sample's boxes) + `StepBatchSampler` + `make_loader`. The naive one opens the store
with `xarray.open_zarr` in each worker and reads every sample with `.isel(time=..., y=slice, x=slice).values`
per array, then applies the same transforms; statics are loaded once, as anyone would. It runs in two forms:
`naive` with open_zarr's defaults (a dask array, one task per Zarr chunk; dask's synchronous scheduler in each
worker, since dask's thread pool does not survive the fork) and `naive_nodask` with `chunks=None` (xarray's
own lazy indexing), a stronger baseline. `ratio` is against `naive`, `ratio_vs_nodask` against the other.

Page cache: the machine has more RAM than the store, but dropping the cache needs root. The store's own pages
are evicted with posix_fadvise(DONTNEED) before a "first read" pass of the fast loader; every "warm" pass
follows a read of every file of the store (the kernel here reclaims idle cache within minutes even with free
RAM), and the store's cache residency (mincore) is recorded before and after each pass. The headline figures
are medians of the warm passes, taken in interleaved rounds (fast, naive, naive_nodask, then again) so that
other load on the machine slows all alike. The loop only takes batches: a training step would compete with
the workers for the same cores.

    python bench/loader.py                  # builds the store first if it is not there yet
    python bench/loader.py --seconds 5 --rounds 1 --times 96 --min-gb 0 --dir /tmp/small   # quick try
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import sys
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dask
import machine
import numpy as np
import pandas as pd
import torch
import xarray as xr
from make_store import add_store_arguments, store_from
from torch.utils.data import Dataset

from stride_contracts import DatasetManifest, FeatureSpec
from stride_contracts.checkpoint import TransformSet, VariableTransform, ZScoreSpec
from stride_core.artifacts import open_zarr_artifact
from stride_core.features import temporal_windows, time_encodings
from stride_core.patches import PatchLayout, sample_rng
from stride_core.transforms import VariableTransforms
from stride_model import adapter
from stride_model.adapter import DownscalingDataset, Key, StepBatchSampler, make_loader

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "loader.json"
FEATURES = FeatureSpec(
    temporal_steps=3, temporal_mode="centred", temporal_edge="drop", time_features=("doy", "hour")
)
TARGET_SAMPLES_PER_S = 500.0
TARGET_RATIO = 5.0


def zscore_transforms(store: Path) -> VariableTransforms:
    """z-score every variable with moments of a few time steps (the transform's cost does not depend on them)."""
    dataset, manifest = open_zarr_artifact(store, DatasetManifest)
    steps = np.linspace(0, dataset.sizes["time"] - 1, 8).astype(int)

    def zscore(values: np.ndarray) -> ZScoreSpec:
        return ZScoreSpec(mean=float(np.nanmean(values)), std=float(np.nanstd(values)) or 1.0)

    target = dataset["target"].isel(time=steps).values
    dynamic = dataset["cond_dynamic"].isel(time=steps).values
    static = dataset["cond_static"].values
    return VariableTransforms(
        TransformSet(
            target=[
                VariableTransform(variable=ref.name, transform=zscore(target[:, i]))
                for i, ref in enumerate(manifest.target)
            ],
            dynamic=[
                VariableTransform(variable=ref.name, transform=zscore(dynamic[:, i]))
                for i, ref in enumerate(manifest.dynamic)
            ],
            static=[
                VariableTransform(variable=ref.name, transform=zscore(static[i]))
                for i, ref in enumerate(manifest.static)
            ],
        )
    )


class NaiveDataset(Dataset[dict[str, Any]]):
    """The same samples as DownscalingDataset (same windows, same patch draws), read with xarray `.isel`.

    `use_dask`: open with xarray.open_zarr's defaults (a dask array of one task per Zarr chunk, as most code
    does); False: `chunks=None`, xarray's own lazy indexing, which reads only the selected chunks without dask.
    """

    def __init__(
        self,
        path: Path,
        transforms: VariableTransforms,
        features: FeatureSpec,
        patch: int,
        seed: int,
        *,
        use_dask: bool = True,
    ) -> None:
        dataset, manifest = open_zarr_artifact(path, DatasetManifest)
        self.path, self.transforms, self.features, self.seed = path, transforms, features, seed
        self.use_dask = use_dask
        self.times = pd.DatetimeIndex(dataset["time"].values)
        self.windows = temporal_windows(
            self.times, dataset["split"].values, "train", features, manifest.time_step_hours
        )
        grid = manifest.grid
        self.layout = PatchLayout.build(grid.hr_shape, grid.factor, (patch, patch))
        self._dataset: xr.Dataset | None = None
        self._statics: np.ndarray | None = None
        self._pid = -1

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_dataset": None, "_statics": None, "_pid": -1}

    def _open(self) -> tuple[xr.Dataset, np.ndarray]:
        if self._pid != os.getpid() or self._dataset is None or self._statics is None:
            # Dask's thread pool does not survive a fork (a worker forked after the parent computed anything
            # with it hangs), and threads per tiny read would only add overhead: compute in the caller.
            dask.config.set(scheduler="synchronous")
            self._dataset = xr.open_zarr(self.path) if self.use_dask else xr.open_zarr(self.path, chunks=None)
            empty = np.zeros((0, self._dataset.sizes["dynamic_var"], 1, 1), np.float32)
            static = self.transforms.forward_conditioning(empty, self._dataset["cond_static"].values)[1]
            assert static is not None
            self._statics, self._pid = static, os.getpid()
        return self._dataset, self._statics

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, key: Key) -> dict[str, Any]:
        index, draw = key
        dataset, statics = self._open()
        patch = self.layout.draw(sample_rng(self.seed, draw, index))
        rows, cols = patch.hr_box
        lr_rows = slice(patch.lr_origin[0], patch.lr_origin[0] + patch.lr_shape[0])
        lr_cols = slice(patch.lr_origin[1], patch.lr_origin[1] + patch.lr_shape[1])
        anchor, steps = int(self.windows.anchors[index]), self.windows.steps[index]
        target = dataset["target"].isel(time=anchor, y=rows, x=cols).values
        dynamic = dataset["cond_dynamic"].isel(time=steps, y_lr=lr_rows, x_lr=lr_cols).values
        valid = np.isfinite(target)
        model = self.transforms.forward_target(np.where(valid, target, np.float32(0)))
        model[~valid] = 0
        when = self.times[[anchor]]
        return {
            "target": torch.from_numpy(model),
            "mask": torch.from_numpy(valid),
            "cond_dynamic": torch.from_numpy(self.transforms.forward_conditioning(dynamic)[0]),
            "cond_static": torch.from_numpy(np.ascontiguousarray(statics[:, rows, cols])),
            "time_features": torch.from_numpy(time_encodings(when, self.features.time_features)[0]),
            "var_label": torch.arange(dataset.sizes["target_var"]),
            "cond_coord": {
                "time_index": torch.tensor(anchor),
                "hr_origin": torch.tensor(patch.hr_origin),
                "lr_origin": torch.tensor(patch.lr_origin),
                "context_origin": torch.tensor(patch.context_origin),
            },
            "meta": {"timestamp": when[0].isoformat(), "key": (index, draw)},
        }


def timed(batches: Iterable[dict[str, Any]], seconds: float, warmup: int) -> dict[str, Any]:
    """Samples/s over at least `seconds` after `warmup` batches (worker start-up and first opens excluded)."""
    iterator = iter(batches)
    start = time.perf_counter()
    for _ in range(warmup):
        next(iterator)
    warmup_s = time.perf_counter() - start
    samples = n_batches = 0
    start = time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        samples += next(iterator)["target"].shape[0]
        n_batches += 1
    elapsed = time.perf_counter() - start
    del iterator  # shuts the workers down
    return {
        "samples_per_s": samples / elapsed,
        "samples": samples,
        "batches": n_batches,
        "seconds": elapsed,
        "warmup_s": warmup_s,
    }


def check_same(fast: Dataset[dict[str, Any]], naive: Dataset[dict[str, Any]], keys: list[Key]) -> float:
    """Largest absolute difference between the two loaders' samples over `keys` (0 when they agree)."""
    worst = 0.0
    for key in keys:
        a, b = fast[key], naive[key]
        for name in ("target", "cond_dynamic", "cond_static", "time_features"):
            worst = max(worst, float((a[name] - b[name]).abs().max()))
        for name in ("hr_origin", "time_index"):
            assert torch.equal(a["cond_coord"][name], b["cond_coord"][name]), f"{name} differs for {key}"
    return worst


LOADERS = {
    "fast": "stride_model.adapter (DownscalingDataset + StepBatchSampler + make_loader)",
    "naive": "xarray.open_zarr (dask, default chunks) + isel(...).values per sample",
    "naive_nodask": "xarray.open_zarr(chunks=None) + isel(...).values per sample (no dask)",
}


def measure(args: argparse.Namespace) -> dict[str, Any]:
    store, info = store_from(args)
    transforms = zscore_transforms(store)
    datasets: dict[str, Dataset[dict[str, Any]]] = {
        "fast": DownscalingDataset(
            store, "train", transforms, FEATURES, patch_shape=(args.crop, args.crop), seed=0
        ),
        "naive": NaiveDataset(store, transforms, FEATURES, args.crop, seed=0),
        "naive_nodask": NaiveDataset(store, transforms, FEATURES, args.crop, seed=0, use_dask=False),
    }
    n_samples = len(datasets["fast"])  # type: ignore[arg-type]
    keys = [(i * 97 % n_samples, i) for i in range(4)]
    difference = max(
        check_same(datasets["fast"], naive, keys) for naive in (datasets["naive"], datasets["naive_nodask"])
    )
    step = 0
    phases: list[dict[str, Any]] = []
    load_before = machine.load()
    resident_start = machine.resident_fraction(store)

    def run(name: str, cache: str) -> None:
        nonlocal step
        # Every pass starts at a new step, so no pass reads the samples of an earlier one again.
        sampler = StepBatchSampler(n_samples, args.batch, 10**9, seed=0, start_step=step)
        step += 100_000
        before = machine.resident_fraction(store) if args.cache_check else None
        result = timed(make_loader(datasets[name], sampler, workers=args.workers), args.seconds, args.warmup)  # type: ignore[arg-type]
        after = machine.resident_fraction(store) if args.cache_check else None
        row = {
            "loader": name,
            "page_cache": cache,
            "resident_before": before,
            "resident_after": after,
            **result,
        }
        phases.append(row)
        print(f"{name:<13} {cache:<22} {row['samples_per_s']:>9.1f} samples/s", file=sys.stderr, flush=True)

    if args.cold:
        machine.evict(store)
        run("fast", "evicted (first read)")
    warm_reads = []
    for _ in range(args.rounds):
        for name in LOADERS:
            # The kernel reclaims idle page cache (DAMON here) even with free RAM, so the store is read
            # again before each warm pass rather than trusted to stay cached.
            start = time.perf_counter()
            warmed = machine.read_all(store)
            warm_reads.append({"gb": warmed / 1e9, "seconds": time.perf_counter() - start})
            run(name, "warm")

    def median(name: str) -> float:
        return statistics.median(
            p["samples_per_s"] for p in phases if p["loader"] == name and p["page_cache"] == "warm"
        )

    fast, naive, nodask = median("fast"), median("naive"), median("naive_nodask")
    cold = [p["samples_per_s"] for p in phases if p["page_cache"] != "warm"]
    return {
        "benchmark": "training data loader: stride_model.adapter vs naive xarray isel",
        "command": " ".join(["python bench/loader.py", *sys.argv[1:]]),
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "device": f"{machine.cpu_model()} ({os.cpu_count()} logical CPUs)",
        "samples_per_s": fast,
        "naive_samples_per_s": naive,
        "ratio": fast / naive,
        "naive_nodask_samples_per_s": nodask,
        "ratio_vs_nodask": fast / nodask,
        "first_read_samples_per_s": cold[0] if cold else None,
        "targets": {"samples_per_s": TARGET_SAMPLES_PER_S, "ratio": TARGET_RATIO},
        "meets_targets": fast >= TARGET_SAMPLES_PER_S and fast / naive >= TARGET_RATIO,
        "loaders": LOADERS,
        "settings": {
            "store_gb": info["store_gb"],
            "crop": [args.crop, args.crop],
            "T": FEATURES.temporal_steps,
            "temporal_mode": FEATURES.temporal_mode,
            "statics": 2,
            "time_features": list(FEATURES.time_features),
            "workers": args.workers,
            "batch": args.batch,
            "seconds_per_pass": args.seconds,
            "warmup_batches": args.warmup,
            "rounds": args.rounds,
            "train_samples": n_samples,
            "torch": torch.__version__,
            "max_abs_difference_fast_vs_naive": difference,
            # The adapter is being worked on; this says which version was measured.
            "adapter_sha256": hashlib.sha256(Path(adapter.__file__).read_bytes()).hexdigest()[:16],
        },
        "page_cache": {
            "resident_at_start": resident_start,
            "warm_reads": warm_reads,
            "note": "no root, so the page cache cannot be dropped: the store's own pages are evicted with "
            "posix_fadvise(DONTNEED) for the first-read pass (the VM host may still cache the disk image); "
            "every warm pass follows a read of every file of the store. Residency (mincore) is recorded "
            "before and after each pass: the kernel reclaims idle cache within minutes here.",
        },
        "phases": phases,
        "store": info,
        "machine": machine.machine(),
        "load_before": load_before,
        "load_after": machine.load(),
    }


def print_table(report: dict[str, Any]) -> None:
    settings, store = report["settings"], report["store"]
    print(
        f"device: {report['device']}; load average before {report['load_before']['loadavg']}, after "
        f"{report['load_after']['loadavg']}"
    )
    print(
        f"store: {store['store_gb']:.2f} GB on disk ({store['raw_gb']:.2f} GB raw, compression "
        f"x{store['compression_ratio']:.2f}, chunks {store['chunks']['target']}), {store['path']}"
    )
    print(
        f"crop {settings['crop'][0]}x{settings['crop'][1]}, T={settings['T']}, {settings['statics']} statics, "
        f"batch {settings['batch']}, {settings['workers']} workers, {settings['seconds_per_pass']:.0f} s per pass"
    )
    header = f"{'loader':<13} {'page cache':<22} {'cached before':>13} {'cached after':>12} {'samples/s':>10} {'samples':>8}"
    print(header)
    print("-" * len(header))
    for row in report["phases"]:
        before, after = (
            f"{row[key]:.0%}" if row[key] is not None else "-"
            for key in ("resident_before", "resident_after")
        )
        print(
            f"{row['loader']:<13} {row['page_cache']:<22} {before:>13} {after:>12} {row['samples_per_s']:>10.1f} "
            f"{row['samples']:>8}"
        )
    print()
    for name, what in report["loaders"].items():
        print(f"{name:<13} {what}")
    print()
    print(
        f"fast {report['samples_per_s']:.1f} samples/s (warm, median); naive {report['naive_samples_per_s']:.1f}: "
        f"ratio x{report['ratio']:.1f}; naive without dask {report['naive_nodask_samples_per_s']:.1f}: "
        f"x{report['ratio_vs_nodask']:.1f} (targets >= {TARGET_SAMPLES_PER_S:.0f} samples/s, x{TARGET_RATIO:.0f} "
        f"the naive loader)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_store_arguments(parser)
    parser.add_argument("--crop", type=int, default=128, help="HR crop edge (default: 128)")
    parser.add_argument("--batch", type=int, default=32, help="samples per batch (default: 32)")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers (default: 2)")
    parser.add_argument("--seconds", type=float, default=20.0, help="timed seconds per pass (default: 20)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed batches per pass (default: 5)")
    parser.add_argument(
        "--rounds", type=int, default=2, help="interleaved rounds of the three loaders (default: 2)"
    )
    parser.add_argument(
        "--no-cold", dest="cold", action="store_false", help="skip the evicted first-read pass"
    )
    parser.add_argument(
        "--no-cache-check", dest="cache_check", action="store_false", help="skip mincore residency checks"
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"JSON report (default: {RESULTS})")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # the main process only receives batches; the cores belong to the workers
    report = measure(args)
    print_table(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
