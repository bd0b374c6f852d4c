"""Speed and memory of stride-eval: the fair CRPS kernel against properscoring and xskillscore, and the
`metrics` mode end to end, on 16 members x 365 dates x 256 x 256 (issue 11).

1. Fair CRPS. The members (float32, [time, member, y, x], 1.5 GB at the full size) are made in memory and
   `stride_core.metrics.crps_ensemble_fair` scores all of them. properscoring 0.1 (its numba gufunc, after
   its own argsort) and xskillscore 0.0.29 (`crps_ensemble`, which wraps properscoring in
   `xr.apply_ufunc`) compute the standard CRPS; the fair one follows from it exactly,
   CRPS_fair = m / (m - 1) CRPS - 1 / (m - 1) mean_i |x_i - y|, and that correction is part of their time.
   Both copy the ensemble to float64 and hold argsort indices, ~6x the members' size at the full size,
   so they run on the first `--reference-dates` dates and their time is scaled per element (by
   dates / reference_dates), as the JSON says (`reference_scaled_from_dates`); the kernel is also timed on
   that subset, so the ratio on the same data is recorded beside it. Every time is the best of `--repeat`
   runs (the machine is shared: the load average is recorded before and after), as wall and CPU seconds.
   `crps_max_rel_diff` is the largest |ours - reference| / |reference| over the subset's points.
2. `metrics` mode. A samples store of that size is written (dask, one date per chunk, never all in
   memory), and `stride-eval --mode metrics` runs on it as a child process, as a user runs it, with
   `chunk_dates` (bounded memory; every family streams) unless `--in-memory`. Peak memory is the child's getrusage maxrss (one process; Dask is
   not used by stride-eval) and, as a cross-check, the largest RSS sum of the child tree sampled every 50 ms;
   its CPU seconds (user + system) beside the wall time, which on a loaded machine is much longer.

    python bench/eval_speed.py                         # the full size, ~2 GB of disk in a temp dir
    python bench/eval_speed.py --dates 32 --size 128   # a quick look
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dask.array as da
import machine
import numpy as np
import pandas as pd
import properscoring
import xarray as xr
import xskillscore

from stride_contracts import ProducerRef, SamplerSettings, SamplesManifest, VariableRef
from stride_contracts.checkpoint import TransformSet, VariableTransform, ZScoreSpec
from stride_contracts.dataset import GridInfo
from stride_core.artifacts import write_zarr_artifact
from stride_core.metrics import crps_ensemble_fair, probability_matched_mean

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "eval-speed.json"
TARGET_SPEEDUP = 10.0
TARGET_REL_DIFF = 1e-6
TARGET_WALL_S = 600.0
TARGET_PEAK_MB = 4000.0
FACTOR = 8


def synthetic(n_dates: int, m: int, size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Temperature-like truth (K) and members = truth + noise, float32, drawn one date at a time."""
    truth = np.empty((n_dates, size, size), np.float32)
    members = np.empty((n_dates, m, size, size), np.float32)
    for t in range(n_dates):
        truth[t], members[t] = date_fields(t, m, size, seed)
    return truth, members


def date_fields(t: int, m: int, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng([seed, t])
    y = np.arange(size)[:, None]
    truth = 280 + 8 * np.sin(2 * np.pi * (y / size + t / 365)) + 2 * rng.standard_normal((size, size))
    members = truth + 1.5 * rng.standard_normal((m, size, size)) + 0.3
    return truth.astype(np.float32), members.astype(np.float32)


def best_of(repeat: int, work: Callable[[], Any]) -> tuple[float, float, Any]:
    """The fastest of `repeat` runs: (wall s, CPU s of this process, the last result)."""
    timings = []
    result = None
    for _ in range(repeat):
        cpu, wall = time.process_time(), time.perf_counter()
        result = work()
        timings.append((time.perf_counter() - wall, time.process_time() - cpu))
    wall_s, cpu_s = min(timings)
    return wall_s, cpu_s, result


def fair_from_standard(standard: np.ndarray, members_last: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """CRPS_fair from the standard ensemble CRPS (same ensemble, members on the last axis)."""
    m = members_last.shape[-1]
    skill = np.mean(np.abs(members_last.astype(np.float64) - truth[..., None]), axis=-1)
    return m / (m - 1) * np.asarray(standard, dtype=np.float64) - skill / (m - 1)


def crps_benchmark(args: argparse.Namespace) -> dict[str, Any]:
    truth, members = synthetic(args.dates, args.members, args.size)
    # Compile (or load from the disk cache) the kernel for this ensemble size outside the timing, as
    # properscoring's gufunc below; the time it took is recorded beside.
    compile_s = time.perf_counter()
    crps_ensemble_fair(members[:1, :, :2, :2], truth[:1, :2, :2], member_axis=1)
    compile_s = time.perf_counter() - compile_s
    wall, cpu, _ = best_of(args.repeat, lambda: crps_ensemble_fair(members, truth, member_axis=1))
    sub = slice(0, min(args.reference_dates, args.dates))
    sub_truth, sub_members = truth[sub], members[sub]
    scale = args.dates / sub_truth.shape[0]
    sub_wall, sub_cpu, ours = best_of(
        args.repeat, lambda: crps_ensemble_fair(sub_members, sub_truth, member_axis=1)
    )
    members_last = np.moveaxis(sub_members, 1, -1)
    obs = xr.DataArray(sub_truth, dims=("time", "y", "x"))
    forecasts = xr.DataArray(members_last, dims=("time", "y", "x", "member"))
    references: dict[str, Callable[[], np.ndarray]] = {
        "properscoring": lambda: fair_from_standard(
            properscoring.crps_ensemble(sub_truth, members_last), members_last, sub_truth
        ),
        "xskillscore": lambda: fair_from_standard(
            xskillscore.crps_ensemble(obs, forecasts, member_dim="member", dim=[]).values,
            members_last,
            sub_truth,
        ),
    }
    # Compile properscoring's numba gufunc outside the timing (xskillscore calls the same one).
    properscoring.crps_ensemble(sub_truth[:1, :2, :2], members_last[:1, :2, :2])
    reference: dict[str, dict[str, float]] = {}
    diffs = {}
    for name, work in references.items():
        ref_wall, ref_cpu, values = best_of(args.repeat, work)
        diffs[name] = float(np.nanmax(np.abs(ours - values) / np.abs(values)))
        reference[name] = {
            "subset_wall_s": ref_wall,
            "subset_cpu_s": ref_cpu,
            "wall_s": ref_wall * scale,
            "cpu_s": ref_cpu * scale,
            "subset_speedup_wall": ref_wall / sub_wall,
            "subset_speedup_cpu": ref_cpu / sub_cpu,
        }
    faster = min(reference, key=lambda name: reference[name]["wall_s"])
    return {
        "crps_s": wall,
        "crps_cpu_s": cpu,
        "crps_first_call_s": compile_s,
        "crps_subset_s": sub_wall,
        "crps_subset_cpu_s": sub_cpu,
        "reference_crps_s": {name: r["wall_s"] for name, r in reference.items()},
        "reference_crps_cpu_s": {name: r["cpu_s"] for name, r in reference.items()},
        "reference_detail": reference,
        "reference_scaled_from_dates": sub_truth.shape[0],
        "faster_reference": faster,
        "crps_speedup": reference[faster]["wall_s"] / wall,
        "crps_speedup_cpu": reference[faster]["cpu_s"] / cpu,
        "crps_max_rel_diff": max(diffs.values()),
        "crps_rel_diff": diffs,
    }


def write_store(path: Path, n_dates: int, m: int, size: int) -> None:
    """A contract-valid samples.zarr of one target (t2m), written lazily one date per chunk."""

    def block(name: str) -> Callable[..., np.ndarray]:
        def make(block_info: dict[Any, Any] | None = None) -> np.ndarray:
            assert block_info is not None
            t = block_info[None]["chunk-location"][0]
            truth, members = date_fields(t, m, size, 0)
            if name == "members":
                return members[None, :, None]
            if name == "pmm":
                return probability_matched_mean(members[None], member_axis=1)[:, None].astype(np.float32)
            if name == "target":
                return truth[None, None]
            coarse = truth.reshape(size // FACTOR, FACTOR, size // FACTOR, FACTOR).mean(axis=(1, 3))
            return coarse[None, None].astype(np.float32)

        return make

    lr = size // FACTOR
    shapes = {
        "members": ((n_dates, m, 1, size, size), (1, m, 1, size, size), ("time", "member", "var", "y", "x")),
        "pmm": ((n_dates, 1, size, size), (1, 1, size, size), ("time", "var", "y", "x")),
        "target": ((n_dates, 1, size, size), (1, 1, size, size), ("time", "var", "y", "x")),
        "cond_dynamic": ((n_dates, 1, lr, lr), (1, 1, lr, lr), ("time", "dynamic_var", "y_lr", "x_lr")),
    }
    arrays = {
        name: (
            dims,
            da.map_blocks(
                block(name),
                dtype=np.float32,
                chunks=tuple((c,) * (n // c) for n, c in zip(shape, chunks, strict=True)),
                meta=np.array((), np.float32),
            ),
        )
        for name, (shape, chunks, dims) in shapes.items()
    }
    lat = np.linspace(58, 50, size)
    dataset = xr.Dataset(
        {
            **arrays,
            "cond_static": (("static_var", "y", "x"), np.ones((1, size, size), np.float32)),
            "seeds": (("time", "member"), np.arange(n_dates * m).reshape(n_dates, m)),
        },
        coords={
            "time": pd.date_range("2019-01-01", periods=n_dates, freq="D"),
            "member": np.arange(m),
            "var": np.array(["t2m"], dtype=object),
            "dynamic_var": np.array(["t2m"], dtype=object),
            "static_var": np.array(["lsm"], dtype=object),
            "lat": ("y", lat),
            "lon": ("x", np.linspace(-10, 2, size)),
        },
    )
    ref = VariableRef(name="t2m", units="K")
    transform = VariableTransform(variable="t2m", transform=ZScoreSpec(mean=0.0, std=1.0))
    manifest = SamplesManifest(
        producer=ProducerRef(tool="bench/eval_speed.py", stride_version="0", created_utc=datetime.now(UTC)),
        target=[ref],
        dynamic=[ref],
        static=[VariableRef(name="lsm", units="1")],
        grid=GridInfo(hr_shape=(size, size), lr_shape=(lr, lr), factor=FACTOR, lat_descending=True),
        split="test",
        n_members=m,
        base_seed=0,
        sampler=SamplerSettings(),
        use_ema=True,
        model_kind="edm",
        checkpoint_step=1,
        transforms=TransformSet(target=[transform], dynamic=[transform], static=[]),
        has_target=True,
    )
    write_zarr_artifact(dataset, manifest, path)


def metrics_benchmark(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    store = workdir / "samples.zarr"
    start = time.perf_counter()
    write_store(store, args.dates, args.members, args.size)
    write_s = time.perf_counter() - start
    output = workdir / "metrics.parquet"
    command = [
        str(Path(sys.executable).parent / "stride-eval"),
        "--samples",
        str(store),
        "--out",
        str(output),
        "--mode",
        "metrics",
    ]
    if not args.in_memory:
        command += ["--set", f"chunk_dates={args.chunk_dates}"]
    env = {**os.environ, "STRIDE_PROGRESS": "0", "MLFLOW_TRACKING_URI": f"sqlite:///{workdir / 'mlflow.db'}"}
    start = time.perf_counter()
    child = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    with machine.TreeMemory(child.pid) as memory:
        log, _ = child.communicate()
    wall = time.perf_counter() - start
    if child.returncode != 0:
        raise SystemExit(f"stride-eval failed ({child.returncode}):\n{log[-3000:]}")
    table = pd.read_parquet(output)
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "metrics_wall_s": wall,
        "metrics_cpu_s": usage.ru_utime + usage.ru_stime,
        "metrics_peak_rss_mb": usage.ru_maxrss / 1024,
        "metrics_peak_tree_rss_mb": memory.peak_bytes / 2**20,
        "metrics_command": " ".join(command[1:]),
        "metrics_families": sorted(set(table["family"])),
        "metrics_rows": len(table),
        "store_write_s": write_s,
        "store_gb": sum(f.stat().st_size for f in store.rglob("*") if f.is_file()) / 1e9,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dates", type=int, default=365)
    parser.add_argument("--members", type=int, default=16)
    parser.add_argument("--size", type=int, default=256, help="HR grid side (a multiple of 8)")
    parser.add_argument("--reference-dates", type=int, default=8, help="dates the references are timed on")
    parser.add_argument("--repeat", type=int, default=3, help="timings per CRPS measurement (best kept)")
    parser.add_argument("--chunk-dates", type=int, default=16, help="stride-eval chunk_dates")
    parser.add_argument(
        "--in-memory", action="store_true", help="stride-eval without chunk_dates (every family)"
    )
    parser.add_argument("--skip-metrics", action="store_true", help="only the CRPS comparison")
    parser.add_argument("--workdir", type=Path, default=None, help="scratch folder (default: a temp dir)")
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args()
    load_before = os.getloadavg()
    result: dict[str, Any] = {
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "shape": {"dates": args.dates, "members": args.members, "y": args.size, "x": args.size},
        "machine": machine.machine(),
        "load_average_before": load_before,
    }
    result |= crps_benchmark(args)
    print(json.dumps({k: v for k, v in result.items() if k.startswith("crps") or k.startswith("reference")}))
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(result, indent=2) + "\n")  # the CRPS part, should the rest fail
    if not args.skip_metrics:
        workdir = Path(tempfile.mkdtemp(prefix="eval-speed-", dir=args.workdir))
        try:
            result |= metrics_benchmark(args, workdir)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
    result["load_average_after"] = os.getloadavg()
    result["targets"] = {
        "crps_speedup": TARGET_SPEEDUP,
        "crps_max_rel_diff": TARGET_REL_DIFF,
        "metrics_wall_s": TARGET_WALL_S,
        "metrics_peak_rss_mb": TARGET_PEAK_MB,
    }
    result["passed"] = {
        "crps_speedup": result["crps_speedup"] >= TARGET_SPEEDUP,
        "crps_max_rel_diff": result["crps_max_rel_diff"] <= TARGET_REL_DIFF,
    }
    if "metrics_wall_s" in result:
        result["passed"]["metrics_wall_s"] = result["metrics_wall_s"] < TARGET_WALL_S
        result["passed"]["metrics_peak_rss_mb"] = result["metrics_peak_rss_mb"] < TARGET_PEAK_MB
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(result, indent=2) + "\n")
    print_table(result, args.results)


def print_table(result: dict[str, Any], path: Path) -> None:
    shape = result["shape"]
    print(f"eval speed, {shape['members']} members x {shape['dates']} dates x {shape['y']}x{shape['x']}")
    print(f"{'measure':<34}{'value':>14}  target")
    rows = [
        ("fair CRPS, stride (wall s)", result["crps_s"], ""),
        ("fair CRPS, stride (CPU s)", result["crps_cpu_s"], ""),
    ]
    scaled = result["reference_scaled_from_dates"]
    for name, seconds in result["reference_crps_s"].items():
        rows.append((f"{name} (wall s, from {scaled} dates)", seconds, ""))
    rows += [
        (f"speedup vs {result['faster_reference']} (wall)", result["crps_speedup"], f">= {TARGET_SPEEDUP:g}"),
        ("speedup (CPU)", result["crps_speedup_cpu"], ""),
        ("max relative difference", result["crps_max_rel_diff"], f"<= {TARGET_REL_DIFF:g}"),
    ]
    if "metrics_wall_s" in result:
        rows += [
            ("metrics mode (wall s)", result["metrics_wall_s"], f"< {TARGET_WALL_S:g}"),
            ("metrics mode (CPU s)", result["metrics_cpu_s"], ""),
            ("metrics mode peak RSS (MB)", result["metrics_peak_rss_mb"], f"< {TARGET_PEAK_MB:g}"),
        ]
    for label, value, target in rows:
        print(f"{label:<34}{value:>14.4g}  {target}")
    print(f"load average before {result['load_average_before']}, after {result['load_average_after']}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
