"""Samples/s of one full stride-train step (forward, EDM loss, backward, AdamW, EMA) at 128² and 256².

The step is stride_train's own TrainStep, on the model size of configs/train_era5_uk.yaml with 1 dynamic and
2 static channels. Variants are timed in interleaved rounds (variant A, B, C, then again), so a busy machine
slows them alike and the ratios between them stay meaningful. FLOPs (matmuls, convolutions, attention) are
counted with torch.utils.flop_counter; on a GPU whose bf16 dense peak is known, model FLOP utilisation is
their rate over that peak. Writes bench/results/train_step.json with the device beside every figure.

    python bench/train_step.py                       # CPU, or the GPU when one is visible
    python bench/train_step.py --sizes 128 --repeats 3 --device cpu
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

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
)
CUDA_VARIANTS = (
    Variant("fp32"),
    Variant("fp32, no EMA", ema=False),
    Variant("bf16"),
    Variant("bf16, channels_last", precision="bf16", channels_last=True),
)
RATIOS = (
    ("fp32", "fp32, no EMA", "full step / same step without the EMA update"),
    ("fp32, channels_last", "fp32", "channels_last / contiguous (fp32)"),
    ("bf16", "fp32", "bf16 autocast / fp32"),
    ("bf16, channels_last", "bf16", "channels_last / contiguous (bf16)"),
    ("bf16, compiled", "bf16", "torch.compile / eager (bf16)"),
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


def bf16_peak(name: str) -> float | None:
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


def measure(args: argparse.Namespace) -> dict[str, Any]:
    device = torch.device("cuda" if args.device != "cpu" and torch.cuda.is_available() else "cpu")
    if args.threads:
        torch.set_num_threads(args.threads)
    name = device_name(device)
    variants = list(CUDA_VARIANTS if device.type == "cuda" else CPU_VARIANTS)
    if args.compile:
        variants.append(Variant("bf16, compiled", precision="bf16", compile=True))
    steps = args.steps_per_round or (20 if device.type == "cuda" else 1)
    peak = bf16_peak(name) if device.type == "cuda" else None
    _register_cpu_attention_flops()
    results: list[dict[str, Any]] = []
    ratios: list[dict[str, Any]] = []
    for size in args.sizes:
        spec = model_spec(size)
        benches = {v.name: Bench(spec, v, args.batch, device) for v in variants}
        flops = benches["fp32"].flops()  # the same network, so the same FLOPs for every variant
        for bench in benches.values():
            bench.run(args.warmup)
        times: dict[str, list[float]] = {v.name: [] for v in variants}
        for round_ in range(args.repeats):
            for variant in variants:
                times[variant.name].append(benches[variant.name].run(steps))
            print(f"{size}x{size}: round {round_ + 1}/{args.repeats} done", file=sys.stderr, flush=True)
        for variant in variants:
            median = statistics.median(times[variant.name])
            achieved = flops / median
            results.append(
                {
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
                    "step_s": times[variant.name],
                    "flops_per_step": flops,
                    "achieved_tflops": achieved / 1e12,
                    "mfu": achieved / peak if peak and variant.precision == "bf16" else None,
                    "mfu_peak_flops": peak if variant.precision == "bf16" else None,
                }
            )
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
        },
        "results": results,
        "ratios": ratios,
    }


def print_table(report: dict[str, Any]) -> None:
    print(f"device: {report['device']} (torch {report['torch']}, batch {report['settings']['batch']})")
    header = f"{'size':>7}  {'variant':<22} {'samples/s':>10} {'step s':>8} {'GFLOP/step':>11} {'TFLOP/s':>8} {'MFU':>6}"
    print(header)
    print("-" * len(header))
    for row in report["results"]:
        mfu = f"{row['mfu']:.1%}" if row["mfu"] is not None else "-"
        print(
            f"{row['resolution']:>4}^2  {row['variant']:<22} {row['samples_per_s']:>10.2f} "
            f"{row['step_s_median']:>8.3f} {row['flops_per_step'] / 1e9:>11.1f} {row['achieved_tflops']:>8.3f} "
            f"{mfu:>6}"
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
    parser.add_argument("--compile", action="store_true", help="also time torch.compile (bf16)")
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"JSON report (default: {RESULTS})")
    args = parser.parse_args(argv)
    report = measure(args)
    print_table(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
