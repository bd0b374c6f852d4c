"""Transforms (contract B): invertible per-variable scalings whose parameters come from offline stats."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from stride_contracts.checkpoint import (
    LogZScoreSpec,
    MinMaxSpec,
    TransformSet,
    TransformSpec,
    VariableTransform,
    ZScoreSpec,
)
from stride_core.errors import ArtifactError, ConfigError

Array = NDArray[np.floating]
CHANNEL_AXIS = -3
"""Channels sit third from last in every tensor STRIDE transforms ([..., C, H, W])."""


class Transform(Protocol):
    def forward(self, x: Array) -> Array: ...
    def inverse(self, y: Array) -> Array: ...


class ZScore:
    def __init__(self, spec: ZScoreSpec) -> None:
        self.spec = spec

    def forward(self, x: Array) -> Array:
        return (x - self.spec.mean) / self.spec.std

    def inverse(self, y: Array) -> Array:
        return y * self.spec.std + self.spec.mean


class LogZScore:
    def __init__(self, spec: LogZScoreSpec) -> None:
        self.spec = spec

    def forward(self, x: Array) -> Array:
        return (np.log(x + self.spec.eps) - self.spec.mean) / self.spec.std

    def inverse(self, y: Array) -> Array:
        # Clip at zero: generated values just under -eps would otherwise give negative amounts.
        return np.maximum(np.exp(y * self.spec.std + self.spec.mean) - self.spec.eps, 0.0)


class MinMax:
    def __init__(self, spec: MinMaxSpec) -> None:
        self.spec = spec

    def forward(self, x: Array) -> Array:
        return (x - self.spec.min) / (self.spec.max - self.spec.min)

    def inverse(self, y: Array) -> Array:
        return y * (self.spec.max - self.spec.min) + self.spec.min


def build_transform(spec: TransformSpec) -> Transform:
    if isinstance(spec, ZScoreSpec):
        return ZScore(spec)
    if isinstance(spec, LogZScoreSpec):
        return LogZScore(spec)
    return MinMax(spec)


class _ChannelTransforms:
    def __init__(self, entries: Sequence[VariableTransform]) -> None:
        self.variables = [entry.variable for entry in entries]
        self._transforms = [build_transform(entry.transform) for entry in entries]

    def _apply(self, x: Array, inverse: bool) -> Array:
        if x.shape[CHANNEL_AXIS] != len(self._transforms):
            raise ValueError(
                f"expected {len(self._transforms)} channels {self.variables} at axis {CHANNEL_AXIS}, "
                f"got shape {x.shape}"
            )
        out = np.empty_like(x, dtype=np.float32)
        for channel, transform in enumerate(self._transforms):
            values = x[..., channel, :, :]
            out[..., channel, :, :] = transform.inverse(values) if inverse else transform.forward(values)
        return out


class VariableTransforms:
    """The transforms of a model's targets, dynamic and static conditioning, in channel order."""

    def __init__(self, spec: TransformSet) -> None:
        self.spec = spec
        self._target = _ChannelTransforms(spec.target)
        self._dynamic = _ChannelTransforms(spec.dynamic)
        self._static = _ChannelTransforms(spec.static)

    def forward_target(self, x: Array) -> Array:
        return self._target._apply(x, inverse=False)

    def inverse_target(self, y: Array) -> Array:
        return self._target._apply(y, inverse=True)

    def forward_conditioning(self, dynamic: Array, static: Array | None = None) -> tuple[Array, Array | None]:
        return self._dynamic._apply(dynamic, False), None if static is None else self._static._apply(
            static, False
        )

    def inverse_conditioning(self, dynamic: Array, static: Array | None = None) -> tuple[Array, Array | None]:
        return self._dynamic._apply(dynamic, True), None if static is None else self._static._apply(
            static, True
        )


def spec_from_stats(stats: pd.DataFrame, role: str, variable: str, kind: str) -> TransformSpec:
    """Build one variable's transform from its row in the offline stats table."""
    rows = stats[(stats["role"] == role) & (stats["variable"] == variable)]
    if rows.empty:
        raise ArtifactError(
            f"stats table has no row for {role} variable '{variable}'; re-run stride-stats on this dataset"
        )
    row = rows.iloc[0]
    if kind == "zscore":
        # A constant field (std 0) is left centred but unscaled rather than divided by zero.
        return ZScoreSpec(mean=float(row["mean"]), std=float(row["std"]) or 1.0)
    if kind == "log_zscore":
        if pd.isna(row["log_mean"]):
            raise ConfigError(
                f"log_zscore for '{variable}' needs non-negative values, but its stats have none in log space; "
                f"choose zscore for it"
            )
        return LogZScoreSpec(
            eps=float(row["log_eps"]), mean=float(row["log_mean"]), std=float(row["log_std"]) or 1.0
        )
    if kind == "minmax":
        low, high = float(row["min"]), float(row["max"])
        return MinMaxSpec(min=low, max=high if high > low else low + 1.0)
    raise ConfigError(f"unknown transform '{kind}' for '{variable}' (known: zscore, log_zscore, minmax)")
