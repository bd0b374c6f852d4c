"""Samples/s of one full stride-train step (forward, EDM loss, backward, AdamW, EMA) at 128² and 256².

The step is stride_train's own TrainStep, on the model size of configs/train_era5_uk.yaml with 1 dynamic and
2 static channels. Variants: fp32, fp32 without the EMA update, channels-last, bf16 autocast and torch.compile
(fp32 on the CPU, bf16 on CUDA; a compiler failure is recorded in the JSON, not raised). They are timed in
interleaved rounds (variant A, B, C, then again), so a busy machine slows them alike and the ratios between
them stay meaningful. FLOPs (matmuls, convolutions, attention) are counted with torch.utils.flop_counter.

Model FLOP utilisation, MFU = FLOPs per step / step time / peak, uses the peak of the variant's precision
measured on this device by bench/peak.py: read from --peak (bench/results/peak.json, which `make
bench-train-step` writes just before) when it was measured on the same device with the same threads, else
measured at the start of this run (a bf16 step is held to the fp32 peak where that one is faster: autocast
leaves part of the step in fp32). A vendor's data-sheet bf16 peak (H100/H200 989 TFLOP/s, ...) is reported
beside it on a GPU.

A variant whose warm-up step takes longer than --budget seconds (bf16 on a CPU without native bf16: tens of
times slower than fp32) keeps that one step as its timing, and is not run at the sizes after it when its
step time scaled by the pixel count would exceed the budget (recorded as skipped, with the reason).
Writes bench/results/train_step.json with the device beside every figure.

    python bench/train_step.py                       # CPU, or the GPU when one is visible
    python bench/train_step.py --sizes 32 128 --repeats 3 --device cpu
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import machine
import peak as peak_bench
import torch
import yaml
from torch.utils import flop_counter

from stride_contracts import ModelSpec
from stride_model import EMA, EDMLoss, build_model
from stride_train.config import ModelConfig
from stride_train.distributed import World
from stride_train.objective import draw_edm
from stride_train.step import Precision, TrainStep

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "train_era5_uk.yaml"
RESULTS = ROOT / "bench" / "results" / "train_step.json"
FACTOR = 4
"""LR/HR ratio of the conditioning, as in the ERA5-UK demo."""

# Dense bf16 tensor-core peaks (FLOP/s) from the vendors' data sheets; the first name found in
# torch.cuda.get_device_name() counts, so the specific names come before the general ones.
BF16_PEAK_FLOPS = (
    ("GH200", 989e12),
    ("H200", 989e12),
    ("H100 PCIe", 756e12),
    ("H100", 989e12),
    ("A100", 312e12),
    ("L40S", 362e12),
)


@dataclass(frozen=True)
class Variant:
    name: str
    precision: Precision = "fp32"
    channels_last: bool = False
    ema: bool = True
    compile: bool = False


CPU_VARIANTS = (
    Variant("fp32"),
    Variant("fp32, no EMA", ema=False),
    Variant("fp32, channels_last", channels_last=True),
    Variant("bf16", precision="bf16"),
    Variant("fp32, compiled", compile=True),
)
CUDA_VARIANTS = (
    Variant("fp32"),
    Variant("fp32, no EMA", ema=False),
    Variant("bf16", precision="bf16"),
    Variant("bf16, channels_last", precision="bf16", channels_last=True),
    Variant("bf16, compiled", precision="bf16", compile=True),
)
RATIOS = (
    ("fp32", "fp32, no EMA", "full step / same step without the EMA update"),
    ("fp32, channels_last", "fp32", "channels_last / contiguous (fp32)"),
    ("bf16", "fp32", "bf16 autocast / fp32"),
    ("bf16, channels_last", "bf16", "channels_last / contiguous (bf16)"),
    ("bf16, compiled", "bf16", "torch.compile / eager (bf16)"),
    ("fp32, compiled", "fp32", "torch.compile / eager (fp32)"),
)


def _register_cpu_attention_flops() -> None:
    """FlopCounterMode knows the CUDA attention kernels only; the CPU flash kernel has the same FLOPs."""
    aten = torch.ops.aten
    for target, formula in (
        (aten._scaled_dot_product_flash_attention_for_cpu, flop_counter.sdpa_flop),
        (aten._scaled_dot_product_flash_attention_for_cpu_backward, flop_counter.sdpa_backward_flop),
    ):
        if target not in flop_counter.flop_registry:
            flop_counter.register_flop_formula(target, get_raw=True)(formula)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{model} ({os.cpu_count()} logical CPUs, {torch.get_num_threads()} torch threads)"


def datasheet_bf16_peak(name: str) -> float | None:
    return next((peak for key, peak in BF16_PEAK_FLOPS if key in name), None)


def model_spec(size: int) -> ModelSpec:
    model = ModelConfig.model_validate(yaml.safe_load(CONFIG.read_text())["model"])
    return ModelSpec(
        kind="edm",
        in_dynamic_channels=1,
        in_static_channels=2,
        out_channels=1,
        lr_shape=(size // FACTOR, size // FACTOR),
        hr_shape=(size, size),
        model_channels=model.model_channels,
        channel_mult=model.channel_mult,
        num_blocks=model.num_blocks,
        attn_resolutions=model.attn_resolutions,
        dropout=model.dropout,
    )


class Bench:
    """One variant's model, optimizer, EMA and step, with a fixed random batch on the device."""

    def __init__(self, spec: ModelSpec, variant: Variant, batch: int, device: torch.device) -> None:
        torch.manual_seed(0)
        model = build_model(spec).to(device)
        self.step = TrainStep(
            model,
            spec,
            EDMLoss(),
            torch.optim.AdamW(model.parameters(), lr=1e-4),
            EMA(model, halflife_samples=5000) if variant.ema else None,
            precision=variant.precision,
            channels_last=variant.channels_last,
            compile=variant.compile,
            grad_clip=1.0,
            world=World(device=device),
        )
        size, lr_size = spec.hr_shape[0], spec.lr_shape[0]
        self.batch_size, self.device, self.done = batch, device, 0
        self.batch = {
            "target": torch.randn(batch, 1, size, size, device=device),
            "mask": torch.ones(batch, 1, size, size, dtype=torch.bool, device=device),
            "cond_dynamic": torch.randn(batch, 1, lr_size, lr_size, device=device),
            "cond_static": torch.randn(batch, 2, size, size, device=device),
        }
        self.generator = torch.Generator(device=device).manual_seed(0)
        self.compiled = variant.compile

    def warm(self, steps: int, budget: float) -> list[float]:
        """Untimed steps one by one (the first compiles, when compiling); stops after a step over budget."""
        times = []
        for _ in range(steps):
            times.append(self.run(1))
            if times[-1] > budget and (len(times) > 1 or not self.compiled):
                break
        return times

    def run(self, steps: int) -> float:
        """Seconds per step over `steps` steps."""
        self._sync()
        start = time.perf_counter()
        for _ in range(steps):
            self.done += 1
            self.step(
                self.batch,
                draw_edm(self.generator, self.batch_size, tuple(self.batch["target"].shape[1:])),
                lr=1e-4,
                global_valid=self.batch["mask"].numel(),
                global_batch=self.batch_size,
                samples_seen=self.done * self.batch_size,
            )
        self._sync()
        return (time.perf_counter() - start) / steps

    def flops(self) -> int:
        """FLOPs of one step (forward and backward), counted by torch.utils.flop_counter."""
        with flop_counter.FlopCounterMode(display=False) as counter:
            self.run(1)
        return int(counter.get_total_flops())

    def _sync(self) -> None:
        if self.device.type == "cuda":  # GPU-only branch
            torch.cuda.synchronize(self.device)


def device_peaks(args: argparse.Namespace, device: torch.device, precisions: set[str]) -> dict[str, Any]:
    """The measured peak report of bench/peak.py for this device (read from --peak, else measured now)."""
    report = peak_bench.read_peak(args.peak, device)
    if report is not None and all(f"{p}_tflops" in report for p in precisions):
        report["source"] = str(args.peak)
        return report
    print("measuring the device peak (bench/peak.py) ...", file=sys.stderr, flush=True)
    dtypes = [dtype for dtype in peak_bench.DTYPES if dtype in precisions]
    report = peak_bench.measure(device, dtypes, peak_bench.CASES[device.type])
    report["source"] = "measured in this run"
    return report


def row(
    name: str, size: int, variant: Variant, args: argparse.Namespace, times: list[float], flops: int
) -> dict[str, Any]:
    median = statistics.median(times)
    achieved = flops / median
    return {
        "device": name,
        "resolution": size,
        "variant": variant.name,
        "precision": variant.precision,
        "channels_last": variant.channels_last,
        "ema": variant.ema,
        "compiled": variant.compile,
        "batch": args.batch,
        "samples_per_s": args.batch / median,
        "step_s_median": median,
        "step_s": times,
        "flops_per_step": flops,
        "achieved_tflops": achieved / 1e12,
    }


def measure(args: argparse.Namespace) -> dict[str, Any]:
    device = torch.device("cuda" if args.device != "cpu" and torch.cuda.is_available() else "cpu")
    if args.threads:
        torch.set_num_threads(args.threads)
    name = device_name(device)
    variants = list(CUDA_VARIANTS if device.type == "cuda" else CPU_VARIANTS)
    if args.no_compile:
        variants = [v for v in variants if not v.compile]
    steps = args.steps_per_round or (20 if device.type == "cuda" else 1)
    budget = args.budget or math.inf
    peaks = device_peaks(args, device, {v.precision for v in variants})
    datasheet = datasheet_bf16_peak(name) if device.type == "cuda" else None
    _register_cpu_attention_flops()
    results: list[dict[str, Any]] = []
    ratios: list[dict[str, Any]] = []
    # Variant name -> why it no longer runs (compiler error, or its step would exceed the budget).
    stopped: dict[str, dict[str, Any]] = {}
    for index, size in enumerate(args.sizes):
        spec = model_spec(size)
        flops = Bench(spec, Variant("fp32"), args.batch, device).flops()  # the same for every variant
        benches: dict[str, Bench] = {}
        times: dict[str, list[float]] = {}
        for variant in variants:
            if variant.name in stopped:
                results.append({"resolution": size, "variant": variant.name, **stopped[variant.name]})
                continue
            try:
                bench = Bench(spec, variant, args.batch, device)
                warm = bench.warm(args.warmup, budget)
            except Exception as exc:  # torch.compile needs a working C++ toolchain; record why it failed
                stopped[variant.name] = {"error": f"{type(exc).__name__}: {str(exc).strip().splitlines()[0]}"}
                results.append({"resolution": size, "variant": variant.name, **stopped[variant.name]})
                print(
                    f"{size}x{size}: {variant.name} failed: {stopped[variant.name]['error']}", file=sys.stderr
                )
                continue
            if warm[-1] > budget:
                # Over budget: its last warm-up step is its timing; no timed rounds.
                results.append({**row(name, size, variant, args, warm[-1:], flops), "over_budget": True})
                stopped[variant.name] = {
                    "skipped": f"step {warm[-1]:.0f} s at {size}^2 > budget {budget:.0f} s"
                }
                continue
            benches[variant.name], times[variant.name] = bench, []
        for round_ in range(args.repeats):
            for variant_name, bench in benches.items():
                times[variant_name].append(bench.run(steps))
            print(f"{size}x{size}: round {round_ + 1}/{args.repeats} done", file=sys.stderr, flush=True)
        for variant in variants:
            if variant.name in benches:
                results.append(row(name, size, variant, args, times[variant.name], flops))
                following = args.sizes[index + 1 : index + 2]
                predicted = (
                    statistics.median(times[variant.name]) * (following[0] / size) ** 2 if following else 0
                )
                if predicted > budget:
                    stopped[variant.name] = {
                        "skipped": f"predicted step {predicted:.0f} s at {following[0]}^2 (pixels x "
                        f"{(following[0] / size) ** 2:.0f}) > budget {budget:.0f} s"
                    }
        for result in results:
            if "achieved_tflops" in result and "mfu" not in result:
                measured = peaks[f"{result['precision']}_tflops"]
                if result["precision"] == "bf16" and peaks["fp32_tflops"] > measured:
                    # Autocast leaves part of the step in fp32, so where bf16 is the slower path (a CPU
                    # without bf16 units) the step can outrun the bf16 peak: the faster peak bounds it.
                    measured = peaks["fp32_tflops"]
                    result["mfu_peak_precision"] = "fp32"
                result["mfu"] = result["achieved_tflops"] / measured
                result["mfu_peak_tflops"] = measured
                if datasheet and result["precision"] == "bf16":  # GPU-only branch
                    result["mfu_datasheet"] = result["achieved_tflops"] * 1e12 / datasheet
        medians = {v: statistics.median(t) for v, t in times.items()}
        for faster, slower, what in RATIOS:
            if faster in medians and slower in medians:
                # Samples/s of the first over the second, from the same interleaved rounds.
                ratios.append(
                    {
                        "device": name,
                        "resolution": size,
                        "what": what,
                        "ratio": medians[slower] / medians[faster],
                    }
                )
        del benches
    return {
        "benchmark": "stride-train training step",
        "command": " ".join(["python bench/train_step.py", *sys.argv[1:]]),
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "device": name,
        "torch": torch.__version__,
        "model": model_spec(args.sizes[0]).model_dump(mode="json", exclude={"lr_shape", "hr_shape"}),
        "config": str(CONFIG.relative_to(ROOT)),
        "settings": {
            "batch": args.batch,
            "warmup_steps": args.warmup,
            "rounds": args.repeats,
            "steps_per_round": steps,
            "threads": torch.get_num_threads(),
            "budget_s": args.budget or None,
        },
        "peak": {
            key: peaks.get(key)
            for key in ("source", "device", "created_utc", "fp32_tflops", "bf16_tflops", "bf16_over_fp32")
        },
        "datasheet_bf16_peak_tflops": datasheet / 1e12 if datasheet else None,
        "results": results,
        "ratios": ratios,
        "load": machine.load(),
    }


def print_table(report: dict[str, Any]) -> None:
    print(f"device: {report['device']} (torch {report['torch']}, batch {report['settings']['batch']})")
    header = f"{'size':>7}  {'variant':<22} {'samples/s':>10} {'step s':>8} {'GFLOP/step':>11} {'TFLOP/s':>8} {'MFU':>6}"
    print(header)
    print("-" * len(header))
    for result in report["results"]:
        if "achieved_tflops" not in result:
            why = result.get("error") or result.get("skipped")
            print(f"{result['resolution']:>4}^2  {result['variant']:<22} {why}")
            continue
        print(
            f"{result['resolution']:>4}^2  {result['variant']:<22} {result['samples_per_s']:>10.3f} "
            f"{result['step_s_median']:>8.3f} {result['flops_per_step'] / 1e9:>11.1f} "
            f"{result['achieved_tflops']:>8.3g} {result['mfu']:>6.1%}"
            + (" (one warm-up step, over budget)" if result.get("over_budget") else "")
        )
    measured = report["peak"]
    print(
        f"\nMFU against the measured peak ({measured['source']}): fp32 {measured['fp32_tflops']:.3g} TFLOP/s"
        + (f", bf16 {measured['bf16_tflops']:.3g} TFLOP/s" if measured.get("bf16_tflops") else "")
    )
    print()
    for ratio in report["ratios"]:
        print(f"{ratio['resolution']:>4}^2  {ratio['what']:<48} x{ratio['ratio']:.3f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=[128, 256], help="HR sizes (default: 128 256)"
    )
    parser.add_argument("--batch", type=int, default=8, help="samples per step (default: 8)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per variant (default: 2)")
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds (default: 5)")
    parser.add_argument("--steps-per-round", type=int, default=0, help="default: 1 on CPU, 20 on GPU")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--no-compile", action="store_true", help="leave out the torch.compile variant")
    parser.add_argument(
        "--budget",
        type=float,
        default=0,
        help="seconds a variant's step may take (default: 300 on the CPU, none on a GPU; 0 = default)",
    )
    parser.add_argument(
        "--peak",
        type=Path,
        default=peak_bench.RESULTS,
        help=f"measured peak (default {peak_bench.RESULTS}; measured now when from another device)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"JSON report (default: {RESULTS})")
    args = parser.parse_args(argv)
    if not args.budget and not (args.device != "cpu" and torch.cuda.is_available()):
        args.budget = 300.0
    report = measure(args)
    print_table(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
