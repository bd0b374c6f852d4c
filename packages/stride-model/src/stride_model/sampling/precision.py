"""Precision of the network call at sampling: autocast around the denoiser; the solver's loop stays float64."""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from stride_model.conditioning import Conditioning
from stride_model.sampling.solvers import Denoiser

Precision = Literal["fp32", "bf16", "fp16"]
DTYPES: dict[str, torch.dtype] = {"bf16": torch.bfloat16, "fp16": torch.float16}


def autocast_denoiser(denoiser: Denoiser, precision: str) -> Denoiser:
    """`denoiser` with its call under torch.autocast(bf16/fp16) on the input's device; fp32 returns it as is.

    The output is cast back to float32, so the solver sees the same dtype whatever the precision. bf16 runs
    on the CPU too (natively where the processor has AVX512-BF16/AMX, emulated and slower elsewhere).
    """
    if precision == "fp32":
        return denoiser
    if precision not in DTYPES:
        raise ValueError(
            f"sampler.precision: unknown precision {precision!r}; choose one of fp32, bf16, fp16"
        )
    dtype = DTYPES[precision]

    def autocast(x: Tensor, sigma: Tensor, cond: Conditioning) -> Tensor:
        with torch.autocast(device_type=x.device.type, dtype=dtype):
            out = denoiser(x, sigma, cond)
        return out.to(torch.float32)

    return autocast
