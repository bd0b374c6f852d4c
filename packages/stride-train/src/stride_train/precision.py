"""Whether a device computes bf16 natively, so that a bf16 run can warn where it will be slower than fp32.

Measured by bench/peak.py on an AMD EPYC (Zen 3, AVX2, no AVX-512): torch 2.13's bf16 matmul and convolution
run through fallbacks about 45x slower than fp32, so training.precision stays fp32 by default (bench/README.md).
CPUs with the avx512_bf16 or amx_bf16 flags (Intel Cooper Lake / Sapphire Rapids and later, AMD Zen 4 and
later) and CUDA GPUs of compute capability 8.0 or above have bf16 arithmetic units.
"""

from __future__ import annotations

from pathlib import Path

import torch

BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")
"""/proc/cpuinfo flags of native bf16 arithmetic (AVX-512 BF16 dot products, AMX tiles)."""


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str]:
    """The first processor's feature flags (empty where /proc/cpuinfo does not exist)."""
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    return set()


def native_bf16(device: torch.device, cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """True where `device` has bf16 arithmetic units (see the module docstring)."""
    if device.type == "cuda":  # GPU-only branch
        return torch.cuda.is_bf16_supported(including_emulation=False)
    return bool(cpu_flags(cpuinfo) & set(BF16_CPU_FLAGS))
