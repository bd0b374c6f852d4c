"""Wall time and peak memory of `stride-stats` on the benchmark store (>= 4 GB on disk, from make_store.py).

stride-stats runs as a child process, exactly as a user runs it (`stride-stats --dataset ... --out ...`, its
default Dask scheduler: local threads, unless --scheduler is given). Peak memory is the largest sum of the
resident set sizes of the child and all its descendants, sampled every 20 ms with psutil, so worker processes
would be counted too (getrusage(RUSAGE_CHILDREN).ru_maxrss only gives the largest single process; it is
recorded beside for comparison). A sum of RSS counts shared pages once per process, so with several processes
it is an upper bound. Writes bench/results/stats.json with the store, machine and load beside the figures.

    python bench/stats.py                      # builds the store first if it is not there yet
    python bench/stats.py --set time_chunk=48  # any stride-stats --set override
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
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import machine
import numpy as np
import pandas as pd
import psutil
import zarr
from make_store import add_store_arguments, store_from

from stride_contracts.dataset import SPLIT_CODES

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "stats.json"
TARGET_PEAK_MB = 2000.0
SAMPLE_S = 0.02


class TreeMemory:
    """Samples the summed RSS of a process and its descendants on a thread until stopped."""

    def __init__(self, pid: int) -> None:
        self.root = psutil.Process(pid)
        self.peak_bytes = 0
        self.peak_processes = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> TreeMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                tree = [self.root, *self.root.children(recursive=True)]
            except psutil.Error:
                return
            total = 0
            for process in tree:
                try:
                    total += process.memory_info().rss
                except psutil.Error:
                    continue
            self.samples += 1
            if total > self.peak_bytes:
                self.peak_bytes, self.peak_processes = total, len(tree)
            self._stop.wait(SAMPLE_S)


def run_stats(store: Path, out_dir: Path, args: argparse.Namespace) -> dict[str, Any]:
    output = out_dir / "stats.parquet"
    command = [
        str(Path(sys.executable).parent / "stride-stats"),
        "--dataset",
        str(store),
        "--out",
        str(output),
    ]
    if args.scheduler:
        command += ["--set", f"scheduler={args.scheduler}"]
    for override in args.set:
        command += ["--set", override]
    # MLflow tracking goes beside the output (stride-stats' default), in the temporary folder; the child
    # also runs there, so nothing it writes lands in the repository.
    env = {key: value for key, value in os.environ.items() if key != "MLFLOW_TRACKING_URI"}
    env["STRIDE_PROGRESS"] = "0"
    print("running: " + " ".join(command), file=sys.stderr, flush=True)
    start = time.perf_counter()
    child = subprocess.Popen(command, env=env, cwd=out_dir)
    with TreeMemory(child.pid) as memory:
        code = child.wait()
    wall = time.perf_counter() - start
    if code != 0:
        raise SystemExit(f"error: stride-stats exited with {code}")
    # ru_maxrss is in KiB on Linux; it is the largest single descendant that has been waited for.
    maxrss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024 / 1e6
    table = pd.read_parquet(output)
    return {
        "command": " ".join(command),
        "wall_s": wall,
        "peak_rss_mb": memory.peak_bytes / 1e6,
        "peak_processes": memory.peak_processes,
        "rss_samples": memory.samples,
        "ru_maxrss_children_mb": maxrss_mb,
        "rows": table[
            ["role", "variable", "count", "mean", "std", "min", "max", "q50", "boxcox_lambda"]
        ].to_dict(orient="records"),
    }


def split_raw_gb(store: Path, split: str) -> float:
    """Uncompressed GB of the target and dynamic arrays over the split's time steps (what stride-stats reads)."""
    arrays = dict(zarr.open_group(store, mode="r").arrays())
    steps = int(np.count_nonzero(np.asarray(arrays["split"][:]) == SPLIT_CODES[split]))
    per_step = sum(
        math.prod(arrays[name].shape[1:]) * arrays[name].dtype.itemsize for name in ("target", "cond_dynamic")
    )
    return steps * per_step / 1e9


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_store_arguments(parser)
    parser.add_argument(
        "--split", default="train", choices=("train", "val", "test"), help="split to describe"
    )
    parser.add_argument("--scheduler", default=None, help="Dask scheduler address (default: local threads)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="stride-stats --set")
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"JSON report (default: {RESULTS})")
    args = parser.parse_args(argv)

    store, info = store_from(args)
    split_gb = split_raw_gb(store, args.split)
    before = machine.load()
    resident = machine.resident_fraction(store)
    out_dir = Path(tempfile.mkdtemp(prefix="stride-bench-stats-", dir=args.dir))
    try:
        result = run_stats(store, out_dir, args)
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)
    after = machine.load()
    report = {
        "benchmark": "stride-stats on the benchmark store",
        "command": " ".join(["python bench/stats.py", *sys.argv[1:]]),
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "device": f"{machine.cpu_model()} ({os.cpu_count()} logical CPUs)",
        "wall_s": result["wall_s"],
        "peak_rss_mb": result["peak_rss_mb"],
        "store_gb": info["store_gb"],
        "split_raw_gb": split_gb,
        "split_raw_mb_per_s": split_gb * 1e3 / result["wall_s"],
        "target_peak_rss_mb": TARGET_PEAK_MB,
        "meets_target": result["peak_rss_mb"] < TARGET_PEAK_MB,
        "settings": {
            "stride_stats_command": result["command"],
            "scheduler": args.scheduler or "dask local threads (stride-stats default)",
            "overrides": args.set,
            "memory_measure": f"peak of summed RSS over the child process tree, sampled every {SAMPLE_S} s",
            "peak_processes": result["peak_processes"],
            "rss_samples": result["rss_samples"],
            "ru_maxrss_children_mb": result["ru_maxrss_children_mb"],
            "page_cache_resident_before": resident,
        },
        "store": info,
        "machine": machine.machine(),
        "load_before": before,
        "load_after": after,
        "stats": result["rows"],
    }
    print_table(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"\nwrote {args.out}")
    return 0


def print_table(report: dict[str, Any]) -> None:
    store = report["store"]
    print(f"device: {report['device']}; load average before {report['load_before']['loadavg']}")
    print(
        f"store: {store['store_gb']:.2f} GB on disk ({store['raw_gb']:.2f} GB raw, compression "
        f"x{store['compression_ratio']:.2f}), {store['path']}"
    )
    print(f"page cache: {report['settings']['page_cache_resident_before']:.0%} of the store resident before")
    print(
        f"{report['split_raw_gb']:.2f} GB (uncompressed) of target + LR conditioning in the split: "
        f"{report['split_raw_mb_per_s']:.0f} MB/s"
    )
    header = f"{'store GB':>9} {'wall s':>8} {'peak RSS MB':>12} {'target MB':>10} {'ok':>4}"
    print(header)
    print("-" * len(header))
    print(
        f"{report['store_gb']:>9.2f} {report['wall_s']:>8.1f} {report['peak_rss_mb']:>12.0f} "
        f"{report['target_peak_rss_mb']:>10.0f} {'yes' if report['meets_target'] else 'NO':>4}"
    )
    print(
        f"(largest single process by getrusage: {report['settings']['ru_maxrss_children_mb']:.0f} MB; "
        f"{report['settings']['peak_processes']} process(es) at the peak)"
    )


if __name__ == "__main__":
    raise SystemExit(main())
