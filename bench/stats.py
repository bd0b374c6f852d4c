"""Throughput and peak memory of `stride-stats` on the benchmark store (>= 4 GB on disk, from make_store.py),
against the read limit measured in the same run.

Three child processes, each timed from start to exit (interpreter start and imports included):
1. the read limit (`read_mb_per_s`): every chunk of the split's target and LR conditioning read and
   decompressed, in the same many-chunk tasks on the same Dask threads as stride-stats, nothing computed;
2. stride-stats exactly as a user runs it (`stride-stats --dataset ... --out ...`, local threads):
   `split_raw_mb_per_s`, and `ratio_to_read` = 2. / 1.;
3. the same on a real Dask cluster, a `dask scheduler` and 2 `dask worker` processes (1 thread each) on
   127.0.0.1 (stride_stats.loopback), via `--set scheduler=tcp://...`: `distributed_mb_per_s`; its memory
   adds the scheduler's and workers' RSS. Peak memory is the largest sum of the
resident set sizes of the child and all its descendants, sampled every 20 ms with psutil, so worker processes
would be counted too (getrusage(RUSAGE_CHILDREN).ru_maxrss only gives the largest single process; it is
recorded beside for comparison). A sum of RSS counts shared pages once per process, so with several processes
it is an upper bound. Writes bench/results/stats.json with the store, machine and load beside the figures.

    python bench/stats.py                      # builds the store first if it is not there yet
    python bench/stats.py --set task_mb=64     # any stride-stats --set override
    python bench/stats.py --times 1440 --min-gb 1   # a quarter-size store (5760 steps is the full one)
    python bench/stats.py --kernels            # CPU ns a value of each step of one task (no JSON written)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import machine
import numpy as np
import pandas as pd
import zarr
from make_store import add_store_arguments, store_from

from stride_contracts.dataset import SPLIT_CODES

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "stats.json"
TARGET_PEAK_MB = 2000.0
TARGET_MB_PER_S = 200.0
TARGET_RATIO = 0.5
SAMPLE_S = machine.TreeMemory.interval_s


def run_child(command: list[str], out_dir: Path, extra_pids: tuple[int, ...] = ()) -> dict[str, Any]:
    """Wall time and peak summed RSS (the child's tree plus `extra_pids`' trees) of one command."""
    # MLflow tracking goes beside the output (stride-stats' default), in the temporary folder; the child
    # also runs there, so nothing it writes lands in the repository.
    env = {key: value for key, value in os.environ.items() if key != "MLFLOW_TRACKING_URI"}
    env["STRIDE_PROGRESS"] = "0"
    print("running: " + " ".join(command), file=sys.stderr, flush=True)
    start, cpu_start = time.perf_counter(), children_cpu_s()
    child = subprocess.Popen(command, env=env, cwd=out_dir)
    with machine.TreeMemory(child.pid, *extra_pids) as memory:
        code = child.wait()
    wall = time.perf_counter() - start
    if code != 0:
        raise SystemExit(f"error: {command[0]} exited with {code}")
    return {
        "command": " ".join(command),
        "wall_s": wall,
        "cpu_s": children_cpu_s() - cpu_start,
        "peak_rss_mb": memory.peak_bytes / 1e6,
        "peak_processes": memory.peak_processes,
    }


def children_cpu_s() -> float:
    """User + system CPU seconds of the waited-for children so far (a cluster's workers once it is stopped)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def stats_command(store: Path, output: Path, args: argparse.Namespace, scheduler: str | None) -> list[str]:
    command = [
        str(Path(sys.executable).parent / "stride-stats"),
        "--dataset",
        str(store),
        "--out",
        str(output),
    ]
    if scheduler:
        command += ["--set", f"scheduler={scheduler}"]
    for override in args.set:
        command += ["--set", override]
    return command


def table_rows(output: Path) -> list[dict[Any, Any]]:
    table = pd.read_parquet(output)
    return table[["role", "variable", "count", "mean", "std", "min", "max", "q50", "boxcox_lambda"]].to_dict(
        orient="records"
    )


def read_limit(store: Path, split: str, task_mb: float) -> dict[str, Any]:
    """Read and decompress every chunk stride-stats reads (the split's time steps of target and
    cond_dynamic, and cond_static), in the same tasks on the same default Dask threads; nothing computed."""
    import dask

    from stride_stats.sources import ZarrSource, row_groups

    group = zarr.open_group(store, mode="r")
    split_array = group["split"]
    assert isinstance(split_array, zarr.Array)
    times = np.flatnonzero(np.asarray(split_array[:]) == SPLIT_CODES[split])
    sources: list[ZarrSource] = []
    for name in ("target", "cond_dynamic", "cond_static"):
        array = group[name]
        assert isinstance(array, zarr.Array)
        channels = array.shape[0] if name == "cond_static" else array.shape[1]
        sources += [
            ZarrSource(str(store), name, c, None if name == "cond_static" else times) for c in range(channels)
        ]
    start = time.perf_counter()
    total = 0
    for source in sources:  # one variable after another, as stride-stats
        tasks = [
            dask.delayed(_read_task)(source, rows)
            for rows in row_groups(source.rows, source.row_size, round(task_mb * 1e6 / 4))
        ]
        total += sum(dask.compute(*tasks))
    return {"bytes": total, "read_s": time.perf_counter() - start}


def _read_task(source: Any, rows: np.ndarray) -> int:
    return int(source.read(rows).nbytes)


def split_raw_gb(store: Path, split: str) -> float:
    """Uncompressed GB of the target and dynamic arrays over the split's time steps (what stride-stats reads)."""
    arrays = dict(zarr.open_group(store, mode="r").arrays())
    steps = int(np.count_nonzero(np.asarray(arrays["split"][:]) == SPLIT_CODES[split]))
    per_step = sum(
        math.prod(arrays[name].shape[1:]) * arrays[name].dtype.itemsize for name in ("target", "cond_dynamic")
    )
    return steps * per_step / 1e9


def task_mb(overrides: list[str]) -> float:
    from stride_stats.config import StatsConfig

    for override in overrides:
        key, _, value = override.partition("=")
        if key == "task_mb":
            return float(value)
    return float(StatsConfig.model_fields["task_mb"].default)


def kernel_profile(store: Path, split: str, rows: int = 32, repeats: int = 5) -> None:
    """CPU ns a value of each step stride-stats takes on one task of `rows` target time steps."""
    from threadpoolctl import threadpool_limits

    from stride_stats.boxcox import fit_boxcox_lambda
    from stride_stats.compute import SLICE_VALUES, _pass, _plan, run_pilot
    from stride_stats.kernels import transform_sums, value_sums
    from stride_stats.sources import ZarrSource

    split_array = zarr.open_group(store, mode="r")["split"]
    assert isinstance(split_array, zarr.Array)
    times = np.flatnonzero(np.asarray(split_array[:]) == SPLIT_CODES[split])
    source = ZarrSource(str(store), "target", 0, times)

    def cpu_s() -> float:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    def timed(name: str, size: int, step: Any, count: int = repeats) -> None:
        start = cpu_s()
        for _ in range(count):
            step()
        print(f"{name:<44} {(cpu_s() - start) / count / size * 1e9:8.2f} ns a value")

    block = np.arange(rows)
    values = source.read(block).reshape(-1)
    start = cpu_s()
    pilot = run_pilot(source, max_samples=1_000_000, seed=0, task_values=1 << 23)
    print(f"pilot ({pilot.sample.size} sample values): {cpu_s() - start:.2f} CPU-s")
    start = cpu_s()
    fit_boxcox_lambda(pilot.sample, 0.01)
    print(f"Box-Cox fit on the sample: {cpu_s() - start:.2f} CPU-s")
    plan = _plan(pilot, bins=20000, wet_threshold=None, log_eps=0.01, boxcox_shift=0.01)
    x = values[:SLICE_VALUES]
    histogram, inverse = plan.histogram.empty_for(float(values.min()), float(values.max()))
    log_x = np.log(x + np.float32(0.01))
    power = np.exp(log_x * np.float32(0.9))
    with threadpool_limits(limits=1, user_api="blas"):
        _pass(values, plan)  # compiles (or loads the cache) first
        timed(f"read + decompress ({rows} steps)", values.size, lambda: source.read(block))
        timed("whole pass (below, per slice)", values.size, lambda: _pass(values, plan))
        args = (plan.shift, float(x.min()), np.nan, inverse, histogram.first, histogram.counts)
        timed("  value_sums (moments, atom, histogram)", x.size, lambda: value_sums(x, *args), 20)
        timed("  float32 log", x.size, lambda: np.log(x + np.float32(0.01)), 20)
        timed("  float32 exp", x.size, lambda: np.exp(log_x * np.float32(0.9)), 20)
        timed(
            "  transform_sums (log, sqrt, power)",
            x.size,
            lambda: transform_sums(x, log_x, power, 5.6, 16.7, 160.0),
            20,
        )
        timed("  float64 log (before)", x.size, lambda: np.log(np.add(x, 0.01, dtype=np.float64)), 20)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_store_arguments(parser)
    parser.add_argument(
        "--split", default="train", choices=("train", "val", "test"), help="split to describe"
    )
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="stride-stats --set")
    parser.add_argument("--workers", type=int, default=2, help="dask worker processes of the cluster run")
    parser.add_argument("--no-distributed", action="store_true", help="skip the loopback cluster run")
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"JSON report (default: {RESULTS})")
    parser.add_argument("--read-only", type=Path, default=None, help=argparse.SUPPRESS)  # the child of 1.
    parser.add_argument("--kernels", action="store_true", help="time each step on one task, write nothing")
    args = parser.parse_args(argv)
    if args.read_only is not None:
        print(json.dumps(read_limit(args.read_only, args.split, task_mb(args.set))))
        return 0

    from stride_stats.loopback import loopback_cluster

    store, info = store_from(args)
    if args.kernels:
        kernel_profile(store, args.split)
        return 0
    split_gb = split_raw_gb(store, args.split)
    before = machine.load()
    resident = machine.resident_fraction(store)
    out_dir = Path(tempfile.mkdtemp(prefix="stride-bench-stats-", dir=args.dir))
    try:
        read_command = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--read-only",
            str(store),
            "--split",
            args.split,
            *[f"--set={o}" for o in args.set],
        ]
        read = run_child(read_command, out_dir)
        local = run_child(stats_command(store, out_dir / "local.parquet", args, None), out_dir)
        local["rows"] = table_rows(out_dir / "local.parquet")
        distributed: dict[str, Any] | None = None
        if not args.no_distributed:
            cpu_start = children_cpu_s()
            with loopback_cluster(workers=args.workers, threads=1, log_dir=out_dir) as cluster:
                command = stats_command(store, out_dir / "cluster.parquet", args, cluster.address)
                distributed = run_child(command, out_dir, tuple(cluster.pids))
            # The workers' CPU counts once they are stopped and waited for.
            distributed["cpu_s"] = children_cpu_s() - cpu_start
            distributed["same_table"] = bool(
                pd.read_parquet(out_dir / "cluster.parquet").equals(
                    pd.read_parquet(out_dir / "local.parquet")
                )
            )
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)
    after = machine.load()
    read_mb_per_s = split_gb * 1e3 / read["wall_s"]
    split_mb_per_s = split_gb * 1e3 / local["wall_s"]
    report = {
        "benchmark": "stride-stats on the benchmark store, against the read limit",
        "command": " ".join(["python bench/stats.py", *sys.argv[1:]]),
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "device": f"{machine.cpu_model()} ({os.cpu_count()} logical CPUs)",
        "store_gb": info["store_gb"],
        "split_raw_gb": split_gb,
        "read_mb_per_s": read_mb_per_s,
        "read_wall_s": read["wall_s"],
        "read_mb_per_cpu_s": split_gb * 1e3 / read["cpu_s"],
        "split_raw_mb_per_cpu_s": split_gb * 1e3 / local["cpu_s"],
        "cpu_note": "MB per CPU-second (user + system of the child tree) is what the load of other "
        "processes changes least; x2 is the 2-core figure on an idle machine if the work scales",
        "split_raw_mb_per_s": split_mb_per_s,
        "wall_s": local["wall_s"],
        "ratio_to_read": split_mb_per_s / read_mb_per_s,
        "target_mb_per_s": TARGET_MB_PER_S,
        "target_ratio_to_read": TARGET_RATIO,
        "peak_rss_mb": local["peak_rss_mb"],
        "target_peak_rss_mb": TARGET_PEAK_MB,
        "meets_target": split_mb_per_s >= TARGET_MB_PER_S and local["peak_rss_mb"] < TARGET_PEAK_MB,
        "distributed_mb_per_s": None if distributed is None else split_gb * 1e3 / distributed["wall_s"],
        "distributed": distributed,
        "settings": {
            "stride_stats_command": local["command"],
            "read_command": read["command"],
            "scheduler": "dask local threads (stride-stats default); distributed: loopback dask scheduler + "
            f"{args.workers} dask worker processes of 1 thread",
            "overrides": args.set,
            "memory_measure": f"peak of summed RSS over the child process tree, sampled every {SAMPLE_S} s",
            "read_peak_rss_mb": read["peak_rss_mb"],
            "read_cpu_s": read["cpu_s"],
            "cpu_s": local["cpu_s"],
            "page_cache_resident_before": resident,
        },
        "store": info,
        "machine": machine.machine(),
        "load_before": before,
        "load_after": after,
        "stats": local["rows"],
    }
    print_table(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"\nwrote {args.out}")
    return 0


def print_table(report: dict[str, Any]) -> None:
    store = report["store"]
    print(
        f"device: {report['device']}; load average before {report['load_before']['loadavg']}, after "
        f"{report['load_after']['loadavg']}"
    )
    print(
        f"store: {store['store_gb']:.2f} GB on disk ({store['raw_gb']:.2f} GB raw, compression "
        f"x{store['compression_ratio']:.2f}), {store['path']}"
    )
    print(f"page cache: {report['settings']['page_cache_resident_before']:.0%} of the store resident before")
    print(f"{report['split_raw_gb']:.2f} GB (uncompressed) of target + LR conditioning in the split")
    header = f"{'run':<34} {'wall s':>8} {'MB/s':>8} {'CPU s':>8} {'MB/CPU-s':>9} {'peak RSS MB':>12}"
    print(header)
    print("-" * len(header))
    rows = [
        (
            "read limit (read + decompress)",
            report["read_wall_s"],
            report["read_mb_per_s"],
            report["settings"]["read_cpu_s"],
            report["settings"]["read_peak_rss_mb"],
        ),
        (
            "stride-stats, local threads",
            report["wall_s"],
            report["split_raw_mb_per_s"],
            report["settings"]["cpu_s"],
            report["peak_rss_mb"],
        ),
    ]
    if report["distributed"]:
        rows.append(
            (
                "stride-stats, scheduler + workers",
                report["distributed"]["wall_s"],
                report["distributed_mb_per_s"],
                report["distributed"]["cpu_s"],
                report["distributed"]["peak_rss_mb"],
            )
        )
    gb = report["split_raw_gb"]
    for name, wall, rate, cpu, peak in rows:
        print(f"{name:<34} {wall:>8.1f} {rate:>8.1f} {cpu:>8.1f} {gb * 1e3 / cpu:>9.1f} {peak:>12.0f}")
    print(
        f"ratio_to_read {report['ratio_to_read']:.2f} (goal >= {report['target_ratio_to_read']}); target "
        f">= {report['target_mb_per_s']:.0f} MB/s and < {report['target_peak_rss_mb']:.0f} MB: "
        f"{'met' if report['meets_target'] else 'NOT met'}"
    )
    if report["distributed"]:
        print(f"cluster table identical to local threads: {report['distributed']['same_table']}")


if __name__ == "__main__":
    raise SystemExit(main())
