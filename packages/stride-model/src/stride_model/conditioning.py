"""Assemble the UNet's conditioning tensor from LR dynamic fields and HR static fields."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from stride_contracts.checkpoint import ModelSpec


def _shape_error(name: str, expected: str, actual: Tensor | None) -> ValueError:
    seen = "None" if actual is None else str(list(actual.shape))
    return ValueError(f"{name}: expected shape {expected}, got {seen}")


def assemble_condition(cond_dynamic: Tensor, cond_static: Tensor | None, spec: ModelSpec) -> Tensor:
    """Stack time into channels (T-major), upsample bicubically to spec.hr_shape and append statics.

    cond_dynamic is [B, T, C_dyn, h, w], or [B, T*C_dyn, h, w] when already stacked (T=1 included);
    cond_static is [B, C_static, H, W] on the HR grid, or None when spec.in_static_channels == 0.
    Returns [B, spec.in_channels, H, W] with channel index t * C_dyn + c for the dynamic part.
    """
    lr_h, lr_w = spec.lr_shape
    hr_h, hr_w = spec.hr_shape
    steps, channels = spec.temporal_steps, spec.in_dynamic_channels
    if cond_dynamic.ndim == 5:
        if tuple(cond_dynamic.shape[1:]) != (steps, channels, lr_h, lr_w):
            raise _shape_error("cond_dynamic", f"[B, {steps}, {channels}, {lr_h}, {lr_w}]", cond_dynamic)
        # Row-major flatten of (T, C) puts time outermost: channel t * C_dyn + c.
        cond_dynamic = cond_dynamic.flatten(1, 2)
    elif cond_dynamic.ndim != 4 or tuple(cond_dynamic.shape[1:]) != (steps * channels, lr_h, lr_w):
        raise _shape_error(
            "cond_dynamic",
            f"[B, {steps}, {channels}, {lr_h}, {lr_w}] or [B, {steps * channels}, {lr_h}, {lr_w}]",
            cond_dynamic,
        )
    batch = cond_dynamic.shape[0]

    # Bicubic interpolation is only implemented for floating point inputs.
    if not cond_dynamic.is_floating_point():
        cond_dynamic = cond_dynamic.to(torch.float32)
    upsampled = F.interpolate(cond_dynamic, size=(hr_h, hr_w), mode="bicubic", align_corners=False)

    n_static = spec.in_static_channels
    if n_static == 0:
        if cond_static is not None and cond_static.shape[1] != 0:
            raise _shape_error("cond_static (spec.in_static_channels=0)", "None", cond_static)
        return upsampled
    if cond_static is None or tuple(cond_static.shape) != (batch, n_static, hr_h, hr_w):
        raise _shape_error("cond_static", f"[{batch}, {n_static}, {hr_h}, {hr_w}]", cond_static)
    return torch.cat([upsampled, cond_static.to(device=upsampled.device, dtype=upsampled.dtype)], dim=1)
