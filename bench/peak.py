"""Measured peak of the device at hand: large matmuls and convolutions in fp32 and bf16, TFLOP/s.

Model FLOP utilisation (bench/train_step.py) divides a training step's FLOP rate by the peak of the same
precision measured here, on the same device, rather than by a data-sheet figure the machine may not reach
(a shared or throttled CPU, a GPU under another job). The peak of a precision is the best median throughput
over its cases: one square matmul and one 3x3 convolution (the UNet's main operator), both large for the device
(CPU: 1024^2 matmul, batch 4 x 64 channels at 64^2; CUDA: 8192^2, batch 64 x 256 channels at 64^2).

Each case gets one untimed warm-up call, then timed calls until --seconds have passed (at least --min-repeats,
at most --max-repeats); the median call time counts (the best is recorded too). On a CPU without native bf16
(no avx512_bf16/amx_bf16 flag: AMD Zen 3, Intel before Cooper Lake) torch's bf16 kernels are fallbacks, much
slower than fp32; the JSON records the flags and torch's SIMD level beside the figures.

    python bench/peak.py                          # CPU, or the GPU when one is visible
    python bench/peak.py --device cpu --dtypes fp32
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import machine
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "peak.json"
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


@dataclass(frozen=True)
class Case:
    """One operator at one shape: `matmul` (n x n by n x n) or `conv` (batch, channels, size, 3x3, same)."""

    kind: str
    shape: tuple[int, ...]

    @property
    def flops(self) -> int:
        if self.kind == "matmul":
            (n,) = self.shape
            return 2 * n**3
        batch, channels, size = self.shape
        return 2 * batch * channels * channels * size * size * 9

    @property
    def label(self) -> str:
        if self.kind == "matmul":
            return f"matmul {self.shape[0]}^2"
        batch, channels, size = self.shape
        return f"conv3x3 b{batch} c{channels} {size}^2"


CASES = {
    # Large enough to keep 2 cores' fp32 units busy; larger CPU shapes only make the bf16 fallback slower.
    "cpu": (Case("matmul", (1024,)), Case("conv", (4, 64, 64))),
    "cuda": (Case("matmul", (8192,)), Case("conv", (64, 256, 64))),
}


def pick_device(choice: str) -> torch.device:
    if choice == "cuda" and not torch.cuda.is_available():
        raise SystemExit("error: --device cuda: no CUDA device visible (torch.cuda.is_available() is False)")
    return torch.device("cuda" if choice != "cpu" and torch.cuda.is_available() else "cpu")


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (CUDA)"
    return f"{machine.cpu_model()} ({torch.get_num_threads()} torch threads)"


def operator(case: Case, dtype: torch.dtype, device: torch.device) -> Callable[[], torch.Tensor]:
    generator = torch.Generator(device=device).manual_seed(0)
    if case.kind == "matmul":
        (n,) = case.shape
        a = torch.randn(n, n, device=device, generator=generator).to(dtype)
        b = torch.randn(n, n, device=device, generator=generator).to(dtype)
        return lambda: a @ b
    batch, channels, size = case.shape
    x = torch.randn(batch, channels, size, size, device=device, generator=generator).to(dtype)
    w = torch.randn(channels, channels, 3, 3, device=device, generator=generator).to(dtype)
    return lambda: F.conv2d(x, w, padding=1)


def time_calls(
    call: Callable[[], torch.Tensor], device: torch.device, seconds: float, min_repeats: int, max_repeats: int
) -> list[float]:
    def sync() -> None:
        if device.type == "cuda":  # GPU-only branch
            torch.cuda.synchronize(device)

    with torch.inference_mode():
        call()  # warm-up: kernel selection, thread pool, allocator
        sync()
        times: list[float] = []
        started = time.perf_counter()
        while len(times) < max_repeats and (
            len(times) < min_repeats or time.perf_counter() - started < seconds
        ):
            start = time.perf_counter()
            call()
            sync()
            times.append(time.perf_counter() - start)
    return times


def measure(
    device: torch.device,
    dtypes: list[str],
    cases: tuple[Case, ...],
    seconds: float = 3.0,
    min_repeats: int = 2,
    max_repeats: int = 100,
) -> dict[str, Any]:
    """The report: one row per case and precision, and `<dtype>_tflops`, the best median over the cases."""
    rows: list[dict[str, Any]] = []
    for dtype in dtypes:
        for case in cases:
            times = time_calls(
                operator(case, DTYPES[dtype], device), device, seconds, min_repeats, max_repeats
            )
            median = statistics.median(times)
            rows.append(
                {
                    "op": case.kind,
                    "shape": list(case.shape),
                    "label": case.label,
                    "dtype": dtype,
                    "flops": case.flops,
                    "repeats": len(times),
                    "median_s": median,
                    "best_s": min(times),
                    "tflops": case.flops / median / 1e12,
                    "tflops_best": case.flops / min(times) / 1e12,
                }
            )
            print(
                f"  {dtype:<5} {case.label:<26} {rows[-1]['tflops']:.3g} TFLOP/s ({len(times)} calls)",
                file=sys.stderr,
                flush=True,
            )
    report: dict[str, Any] = {
        "benchmark": "device peak (matmul, conv3x3)",
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "device": device_name(device),
        "device_type": device.type,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "settings": {"seconds": seconds, "min_repeats": min_repeats, "max_repeats": max_repeats},
        "results": rows,
    }
    for dtype in dtypes:
        report[f"{dtype}_tflops"] = max(row["tflops"] for row in rows if row["dtype"] == dtype)
    if "fp32" in dtypes and "bf16" in dtypes:
        report["bf16_over_fp32"] = report["bf16_tflops"] / report["fp32_tflops"]
    if device.type == "cpu":
        report["cpu"] = machine.cpu_bf16()
    else:  # GPU-only branch
        report["cuda"] = {
            "capability": list(torch.cuda.get_device_capability(device)),
            "tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
            "tf32_cudnn": torch.backends.cudnn.allow_tf32,
        }
    return report


def read_peak(path: Path, device: torch.device) -> dict[str, Any] | None:
    """peak.json when it was measured on this device with this thread count, else None."""
    if not path.is_file():
        return None
    report: dict[str, Any] = json.loads(path.read_text())
    if report.get("device") != device_name(device) or report.get("threads") != torch.get_num_threads():
        return None
    return report


def print_table(report: dict[str, Any]) -> None:
    print(f"device: {report['device']} (torch {report['torch']})")
    header = f"{'dtype':<6} {'case':<26} {'calls':>6} {'median s':>10} {'TFLOP/s':>9} {'best':>9}"
    print(header)
    print("-" * len(header))
    for row in report["results"]:
        print(
            f"{row['dtype']:<6} {row['label']:<26} {row['repeats']:>6} {row['median_s']:>10.4f} "
            f"{row['tflops']:>9.3g} {row['tflops_best']:>9.3g}"
        )
    peaks = ", ".join(f"{key} {value:.3g}" for key, value in report.items() if key.endswith("_tflops"))
    print(f"\npeak: {peaks}")
    if "bf16_over_fp32" in report:
        print(f"bf16 / fp32: x{report['bf16_over_fp32']:.3f}")
    if "cpu" in report:
        print(f"cpu: {report['cpu']}")
    if "load" in report:
        print(f"load average {report['load']['loadavg']} on {os.cpu_count()} logical CPUs")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--dtypes", nargs="+", choices=tuple(DTYPES), default=list(DTYPES))
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's)")
    parser.add_argument("--seconds", type=float, default=3.0, help="timed seconds per case (default 3)")
    parser.add_argument("--min-repeats", type=int, default=2, help="timed calls at least (default 2)")
    parser.add_argument("--max-repeats", type=int, default=100, help="timed calls at most (default 100)")
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"JSON report (default {RESULTS})")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    report = measure(
        device, args.dtypes, CASES[device.type], args.seconds, args.min_repeats, args.max_repeats
    )
    report["command"] = " ".join(["python bench/peak.py", *(sys.argv[1:] if argv is None else argv)])
    report["load"] = machine.load()  # a shared machine's figures are its share, not the device's peak
    print_table(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
