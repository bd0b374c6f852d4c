"""Transforms (contract B): invertible per-variable scalings whose parameters come from offline stats."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from stride_contracts.checkpoint import (
    BoxCoxSpec,
    LogZScoreSpec,
    MinMaxSpec,
    SqrtSpec,
    TransformSet,
    TransformSpec,
    VariableTransform,
    ZScoreSpec,
)
from stride_core.errors import ArtifactError, ConfigError

Array = NDArray[np.floating]
CHANNEL_AXIS = -3
"""Channels sit third from last in every tensor STRIDE transforms ([..., C, H, W])."""

ArrayT = TypeVar("ArrayT")


def boxcox(u: ArrayT, lmbda: float) -> ArrayT:
    """Box & Cox (1964): (u^lmbda - 1) / lmbda, log(u) at lmbda = 0, for u > 0.

    Written with expm1 so that small |lmbda| keeps full precision and tends to log(u) continuously; pure
    ufuncs, so numpy and Dask arrays alike (stride-stats computes its moments with this same function).
    """
    values: Any = u  # numpy's stubs do not know Dask's __array_ufunc__
    if lmbda == 0:
        return np.log(values)
    return np.expm1(lmbda * np.log(values)) / lmbda


def inv_boxcox(b: Array, lmbda: float) -> Array:
    """Inverse of `boxcox`, defined for every real b.

    The image of `boxcox` is (-1/lmbda, inf) for lmbda > 0 and (-inf, -1/lmbda) for lmbda < 0. Below the
    image (lmbda > 0) the result is u = 0, the lower edge of the domain; above it (lmbda < 0) no finite u
    exists and the result is +inf, which is why BoxCoxSpec requires lmbda >= 0.
    """
    with np.errstate(divide="ignore", over="ignore"):
        if lmbda == 0:
            return np.exp(b)
        return np.exp(np.log1p(np.maximum(lmbda * b, -1.0)) / lmbda)


class Transform(Protocol):
    """forward: physical -> model space; inverse: model space -> physical, for every real input.

    A diffusion model's samples are not confined to the image of `forward`, so each inverse maps any real
    value into the physical domain: the positive-definite transforms (log_zscore, boxcox, sqrt) clip at
    zero, because a negative precipitation amount would poison every downstream metric.
    """

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
        with np.errstate(over="ignore"):
            return np.maximum(np.exp(y * self.spec.std + self.spec.mean) - self.spec.eps, 0.0)


class BoxCox:
    """Box-Cox of x + shift, z-scored; computed in float64 because u^lmbda overflows float32 early."""

    def __init__(self, spec: BoxCoxSpec) -> None:
        self.spec = spec

    def forward(self, x: Array) -> Array:
        u = np.asarray(x, dtype=np.float64) + self.spec.shift
        return (boxcox(u, self.spec.lmbda) - self.spec.mean) / self.spec.std

    def inverse(self, y: Array) -> Array:
        b = np.asarray(y, dtype=np.float64) * self.spec.std + self.spec.mean
        # Clip at zero: outputs below the image of x >= 0 would otherwise give -shift < x < 0.
        return np.maximum(inv_boxcox(b, self.spec.lmbda) - self.spec.shift, 0.0)


class Sqrt:
    def __init__(self, spec: SqrtSpec) -> None:
        self.spec = spec

    def forward(self, x: Array) -> Array:
        return (np.sqrt(x) - self.spec.mean) / self.spec.std

    def inverse(self, y: Array) -> Array:
        # Clip the root, not the square: squaring a negative root would fold it back onto a positive amount
        # and make the inverse non-monotone.
        return np.square(np.maximum(y * self.spec.std + self.spec.mean, 0.0))


class MinMax:
    def __init__(self, spec: MinMaxSpec) -> None:
        self.spec = spec

    def forward(self, x: Array) -> Array:
        return (x - self.spec.min) / (self.spec.max - self.spec.min)

    def inverse(self, y: Array) -> Array:
        return y * (self.spec.max - self.spec.min) + self.spec.min


def build_transform(spec: TransformSpec) -> Transform:
    match spec:
        case ZScoreSpec():
            return ZScore(spec)
        case LogZScoreSpec():
            return LogZScore(spec)
        case BoxCoxSpec():
            return BoxCox(spec)
        case SqrtSpec():
            return Sqrt(spec)
        case MinMaxSpec():
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
    """Build one variable's transform of `kind` from its row in the offline stats table."""
    builder = _SPEC_BUILDERS.get(kind)
    if builder is None:
        raise ConfigError(f"unknown transform '{kind}' for '{variable}' (known: {', '.join(_SPEC_BUILDERS)})")
    rows = stats[(stats["role"] == role) & (stats["variable"] == variable)]
    if rows.empty:
        raise ArtifactError(
            f"stats table has no row for {role} variable '{variable}'; re-run stride-stats on this dataset"
        )
    row = rows.iloc[0]
    return builder(lambda *columns: _stats_values(row, variable, kind, columns))


class StatsLookup(Protocol):
    """The named columns of one stats row, as floats."""

    def __call__(self, *columns: str) -> list[float]: ...


def _stats_values(row: pd.Series[Any], variable: str, kind: str, columns: tuple[str, ...]) -> list[float]:
    missing = [column for column in columns if pd.isna(row.get(column))]
    if missing:
        raise ConfigError(
            f"{kind} for '{variable}' needs {', '.join(missing)} from the stats table, but its row has none "
            f"(left empty when the variable has values < 0, or the table predates them: re-run stride-stats); "
            f"choose zscore for it"
        )
    return [float(row[column]) for column in columns]


def _zscore(values: StatsLookup) -> TransformSpec:
    mean, std = values("mean", "std")
    # A constant field (std 0) is left centred but unscaled rather than divided by zero; likewise below.
    return ZScoreSpec(mean=mean, std=std or 1.0)


def _log_zscore(values: StatsLookup) -> TransformSpec:
    eps, mean, std = values("log_eps", "log_mean", "log_std")
    return LogZScoreSpec(eps=eps, mean=mean, std=std or 1.0)


def _boxcox(values: StatsLookup) -> TransformSpec:
    lmbda, shift, mean, std = values("boxcox_lambda", "boxcox_shift", "boxcox_mean", "boxcox_std")
    return BoxCoxSpec(lmbda=lmbda, shift=shift, mean=mean, std=std or 1.0)


def _sqrt(values: StatsLookup) -> TransformSpec:
    mean, std = values("sqrt_mean", "sqrt_std")
    return SqrtSpec(mean=mean, std=std or 1.0)


def _minmax(values: StatsLookup) -> TransformSpec:
    low, high = values("min", "max")
    return MinMaxSpec(min=low, max=high if high > low else low + 1.0)


_SPEC_BUILDERS: dict[str, Callable[[StatsLookup], TransformSpec]] = {
    "zscore": _zscore,
    "log_zscore": _log_zscore,
    "boxcox": _boxcox,
    "sqrt": _sqrt,
    "minmax": _minmax,
}
"""Transform kind -> how its spec is read from a stats row (the kinds of `TransformKind`)."""
