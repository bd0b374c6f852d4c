"""Per-sample FiLM embedding: context encoder, variable labels and time features, summed into one vector.

The vector is added to the UNet's noise embedding (as EDM adds its class-label embedding), so it reaches
every residual block through the block's scale and shift; the RainGate reads the same vector. Each part's
last layer starts at zero: turning a feature on starts from the model without it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from stride_contracts.checkpoint import ModelSpec
from stride_model.conditioning import Conditioning
from stride_model.context import ContextEncoder
from stride_model.unet import _init


def _zero_linear(in_features: int, out_features: int) -> nn.Linear:
    layer = nn.Linear(in_features, out_features)
    nn.init.zeros_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


class VariableLabelEmbedding(nn.Module):
    """int64 labels [B, C_out] -> [B, out_channels]: one learned vector per label, averaged over channels."""

    def __init__(self, num_labels: int, out_channels: int) -> None:
        super().__init__()
        self.table = nn.Embedding(num_labels, out_channels)
        self.proj = _zero_linear(out_channels, out_channels)

    def forward(self, labels: Tensor) -> Tensor:
        out: Tensor = self.proj(self.table(labels).mean(dim=1))
        return out


class TimeEmbedding(nn.Module):
    """Time features [B, F] ((sin, cos) of day of year, hour) -> [B, out_channels] through a 2-layer MLP."""

    def __init__(self, n_features: int, out_channels: int) -> None:
        super().__init__()
        self.hidden = nn.Linear(n_features, out_channels)
        _init(self.hidden)
        self.proj = _zero_linear(out_channels, out_channels)

    def forward(self, features: Tensor) -> Tensor:
        out: Tensor = self.proj(F.silu(self.hidden(features)))
        return out


class FiLMEmbedding(nn.Module):
    """The sum of the parts the spec turns on (context, variable labels, time features): [B, out_channels]."""

    def __init__(self, spec: ModelSpec, out_channels: int) -> None:
        super().__init__()
        if not spec.uses_film:
            raise ValueError(
                "FiLMEmbedding: the spec turns on none of use_context_encoder, use_film_vars, use_film_doy"
            )
        self.spec = spec
        self.out_channels = out_channels
        self.context = (
            ContextEncoder(
                spec.in_dynamic_channels * spec.temporal_steps, spec.context_channels, out_channels
            )
            if spec.use_context_encoder
            else None
        )
        self.var_labels = (
            VariableLabelEmbedding(spec.num_var_labels, out_channels)
            if spec.use_film_vars and spec.num_var_labels is not None
            else None
        )
        self.time = TimeEmbedding(spec.n_time_features, out_channels) if spec.use_film_doy else None

    def forward(self, cond: Conditioning) -> Tensor:
        spec, batch = self.spec, len(cond)
        parts: list[Tensor] = []
        if self.context is not None:
            context = _needed(cond.context, "context", "use_context_encoder", "cond_context")
            channels = spec.in_dynamic_channels * spec.temporal_steps
            if context.shape[1] != channels:
                raise ValueError(
                    f"Conditioning.context: expected [B, {channels}, hc, wc] (T * C_dyn), got "
                    f"{list(context.shape)}"
                )
            parts.append(self.context(context.to(torch.float32)))
        if self.var_labels is not None:
            labels = _needed(cond.var_label, "var_label", "use_film_vars", "var_label")
            if tuple(labels.shape) != (batch, spec.out_channels):
                raise ValueError(
                    f"Conditioning.var_label: expected [{batch}, {spec.out_channels}] (out_channels), got "
                    f"{list(labels.shape)}"
                )
            parts.append(self.var_labels(labels))
        if self.time is not None:
            features = _needed(cond.time_features, "time_features", "use_film_doy", "time_features")
            if tuple(features.shape) != (batch, spec.n_time_features):
                raise ValueError(
                    f"Conditioning.time_features: expected [{batch}, {spec.n_time_features}] "
                    f"(spec.n_time_features), got {list(features.shape)}"
                )
            parts.append(self.time(features.to(torch.float32)))
        return torch.stack(parts).sum(dim=0) if len(parts) > 1 else parts[0]


def _needed(value: Tensor | None, field: str, flag: str, batch_key: str) -> Tensor:
    if value is None:
        raise ValueError(
            f"Conditioning.{field} is None but ModelSpec.{flag}=True needs it; build the Conditioning with "
            f"assemble_conditioning from a batch that has {batch_key!r}"
        )
    return value
