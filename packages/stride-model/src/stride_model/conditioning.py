"""The model's conditioning: a contract-A batch turned into the inputs a ModelSpec says the network reads."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from stride_contracts.checkpoint import ModelSpec


def _shape(tensor: Tensor | None) -> str:
    return "None" if tensor is None else str(list(tensor.shape))


@dataclass(frozen=True)
class Conditioning:
    """Everything the network is conditioned on, batched on dim 0 (B samples).

    image: [B, spec.in_channels, H, W], the LR dynamics upsampled to HR (time-major: channel t * C_dyn + c),
        then the HR statics. context: [B, T * C_dyn, hc, wc], the LR context region (None unless
        spec.use_context_encoder). time_features: [B, F] (None unless spec.use_film_doy). var_label: int64
        [B, C_out] (None unless spec.use_film_vars).
    """

    image: Tensor
    context: Tensor | None = None
    time_features: Tensor | None = None
    var_label: Tensor | None = None

    def __post_init__(self) -> None:
        if self.image.ndim != 4:
            raise ValueError(f"Conditioning.image: expected [B, C, H, W], got {_shape(self.image)}")
        expected_ndim = {"context": 4, "time_features": 2, "var_label": 2}
        for name, ndim in expected_ndim.items():
            value = getattr(self, name)
            if value is not None and (value.ndim != ndim or value.shape[0] != self.image.shape[0]):
                raise ValueError(
                    f"Conditioning.{name}: expected {ndim} dims with batch size {self.image.shape[0]} (the "
                    f"image's), got {_shape(value)}"
                )

    def __len__(self) -> int:
        return int(self.image.shape[0])

    def _map(self, fn: Callable[[Tensor], Tensor]) -> Conditioning:
        def optional(t: Tensor | None) -> Tensor | None:
            return None if t is None else fn(t)

        return Conditioning(
            image=fn(self.image),
            context=optional(self.context),
            time_features=optional(self.time_features),
            var_label=optional(self.var_label),
        )

    def to(self, device: torch.device | str) -> Conditioning:
        """Every tensor on `device`, dtypes unchanged."""
        return self._map(lambda t: t.to(device))

    def repeat_interleave(self, n: int) -> Conditioning:
        """Each sample n times in a row (sample b becomes items b * n .. b * n + n - 1), for ensembles."""
        return self._map(lambda t: t.repeat_interleave(n, dim=0))

    def __getitem__(self, index: Tensor | slice) -> Conditioning:
        """The samples at `index` (a slice or an index tensor along dim 0)."""
        return self._map(lambda t: t[index])

    def contiguous(self, memory_format: torch.memory_format = torch.contiguous_format) -> Conditioning:
        """The image in `memory_format` (channels-last for faster convolutions); the rest unchanged."""
        return dataclasses.replace(self, image=self.image.contiguous(memory_format=memory_format))


def _required(batch: Mapping[str, Any], key: str, why: str) -> Tensor:
    value = batch.get(key)
    if value is None:
        raise ValueError(f"batch has no {key!r}, which {why}; have the adapter produce it or turn that off")
    if not isinstance(value, Tensor):
        raise ValueError(f"batch[{key!r}]: expected a torch.Tensor, got {type(value).__name__}")
    return value


def _expect(name: str, tensor: Tensor, expected: tuple[int, ...], why: str = "") -> None:
    if tuple(tensor.shape) != expected:
        reason = f" ({why})" if why else ""
        raise ValueError(f"{name}: expected shape {list(expected)}{reason}, got {_shape(tensor)}")


def _stack_time(dynamic: Tensor, spec: ModelSpec) -> Tensor:
    """[B, T, C_dyn, h, w] (or already stacked [B, T * C_dyn, h, w]) -> [B, T * C_dyn, h, w], time-major."""
    steps, channels = spec.temporal_steps, spec.in_dynamic_channels
    if dynamic.ndim == 5:
        if tuple(dynamic.shape[1:3]) != (steps, channels):
            raise ValueError(
                f"cond_dynamic: expected shape [B, {steps}, {channels}, h, w] (spec.temporal_steps, "
                f"spec.in_dynamic_channels), got {_shape(dynamic)}"
            )
        # Row-major flatten of (T, C) puts time outermost: channel t * C_dyn + c.
        return dynamic.flatten(1, 2)
    if dynamic.ndim != 4 or dynamic.shape[1] != steps * channels:
        raise ValueError(
            f"cond_dynamic: expected shape [B, {steps}, {channels}, h, w] or [B, {steps * channels}, h, w] "
            f"(spec.temporal_steps x spec.in_dynamic_channels), got {_shape(dynamic)}"
        )
    return dynamic


def assemble_conditioning(batch: Mapping[str, Any], spec: ModelSpec) -> Conditioning:
    """Build the Conditioning of a contract-A batch for a model of `spec`.

    The HR size is spec.factor times the batch's own LR size, so a model trained on patches runs on the
    full domain. The image is the bicubically upsampled LR dynamics (time-major), then the statics. Inputs
    the spec does not use are left out; one it needs but the batch lacks is an error.
    """
    dynamic = _stack_time(_required(batch, "cond_dynamic", "every model needs"), spec)
    size, _, lr_h, lr_w = dynamic.shape
    hr_h, hr_w = lr_h * spec.factor, lr_w * spec.factor
    # Bicubic interpolation is only implemented for floating point inputs.
    upsampled = F.interpolate(
        dynamic.to(torch.float32), size=(hr_h, hr_w), mode="bicubic", align_corners=False
    )

    static = batch.get("cond_static")
    n_static = spec.in_static_channels
    if n_static == 0:
        if static is not None and static.shape[1] != 0:
            raise ValueError(
                f"cond_static: expected none (spec.in_static_channels=0), got shape {_shape(static)}"
            )
        image = upsampled
    else:
        if static is None:
            raise ValueError(
                f"cond_static: expected shape [{size}, {n_static}, {hr_h}, {hr_w}] (spec.in_static_channels), "
                f"got None"
            )
        _expect(
            "cond_static",
            static,
            (size, n_static, hr_h, hr_w),
            f"spec.in_static_channels at spec.factor {spec.factor} x the LR size {lr_h}x{lr_w}",
        )
        image = torch.cat([upsampled, static.to(device=upsampled.device, dtype=upsampled.dtype)], dim=1)

    context = None
    if spec.use_context_encoder:
        context = _required(batch, "cond_context", "ModelSpec.use_context_encoder=True needs")
        margin = spec.context_margin
        _expect(
            "cond_context",
            context,
            (size, dynamic.shape[1], lr_h + 2 * margin, lr_w + 2 * margin),
            f"T * C_dyn and the LR size {lr_h}x{lr_w} + 2 x margin {margin} of spec.context_shape",
        )
        context = context.to(torch.float32)

    time_features = None
    if spec.use_film_doy:
        time_features = _required(batch, "time_features", "ModelSpec.use_film_doy=True needs")
        _expect("time_features", time_features, (size, spec.n_time_features), "spec.n_time_features")
        time_features = time_features.to(torch.float32)

    var_label = None
    if spec.use_film_vars:
        var_label = _required(batch, "var_label", "ModelSpec.use_film_vars=True needs")
        _expect("var_label", var_label, (size, spec.out_channels), "spec.out_channels")
        if var_label.is_floating_point() or var_label.is_complex() or var_label.dtype == torch.bool:
            raise ValueError(f"var_label: expected an integer dtype (int64), got {var_label.dtype}")
        assert spec.num_var_labels is not None  # the spec validates it with use_film_vars
        if var_label.numel() and (int(var_label.min()) < 0 or int(var_label.max()) >= spec.num_var_labels):
            raise ValueError(
                f"var_label: values must lie in 0..{spec.num_var_labels - 1} (spec.num_var_labels), got "
                f"{int(var_label.min())}..{int(var_label.max())}"
            )
        var_label = var_label.to(torch.int64)

    return Conditioning(image=image, context=context, time_features=time_features, var_label=var_label)
