"""A physical bound on what generation emits, per target variable, from the training split's range.

The inverse of a log or Box-Cox transform is exponential: a member a few units beyond the training range in
transformed space comes out orders of magnitude beyond it in physical units (46,576 mm/h on a 1 km radar
case whose training maximum was 30). Generation therefore clips each target variable to its training range
widened by (multiple - 1) times its width on each side:

    high = max + (multiple - 1) (max - min),   low = min - (multiple - 1) (max - min)

and, for a variable whose training values are all >= 0, low is at least 0. For precipitation (min 0)
high is multiple x the training maximum; the default multiple, 2, lets a test date be twice as extreme as
anything in training and stops the exponential runaway. The range comes from the checkpoint's
`training_stats` (the train split's stats rows, carried since the checkpoint contract added them); a
checkpoint without them is not bounded, and generation says so. The share of values each side of the bound
touched is logged per variable and sent to MLflow as `bound.<variable>.share_high` / `share_low`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from logging import Logger

import numpy as np
from numpy.typing import NDArray
from pydantic import Field

from stride_contracts import StatsRow
from stride_core.config import StrictConfig

DEFAULT_MULTIPLE = 2.0


class IntensityBoundConfig(StrictConfig):
    """How far generation may go beyond the training split's range of each target variable."""

    multiple: float | None = Field(
        default=DEFAULT_MULTIPLE,
        ge=1.0,
        description="Clip members to the training range widened by (multiple - 1) x its width on each side "
        "(never below 0 for variables >= 0 in training; multiple x max for precipitation, whose minimum is "
        "0); null turns the bound off.",
    )


@dataclass(frozen=True)
class VariableBound:
    variable: str
    low: float
    high: float


@dataclass
class IntensityBound:
    """Per-channel clipping of member arrays [dates, M, C, H, W], counting what it touched."""

    bounds: list[VariableBound]
    values: int = 0
    below: dict[str, int] = field(default_factory=dict)
    above: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_stats(
        cls, targets: Sequence[str], training_stats: Sequence[StatsRow], multiple: float | None
    ) -> IntensityBound | None:
        """The bound of each target channel, or None when off or the stats do not cover every target."""
        if multiple is None:
            return None
        rows = {row.variable: row for row in training_stats if row.role == "target"}
        if any(name not in rows for name in targets):
            return None
        bounds = []
        for name in targets:
            row = rows[name]
            margin = (multiple - 1.0) * (row.max - row.min)
            # A variable never negative in training never goes below 0 (the widened range may reach past it).
            low = row.min - margin if row.min < 0 else max(0.0, row.min - margin)
            bounds.append(VariableBound(name, low, row.max + margin))
        return cls(bounds)

    def apply(self, members: NDArray[np.float32]) -> NDArray[np.float32]:
        """members clipped per channel (axis 2); counts the values clipped on either side."""
        if members.ndim != 5 or members.shape[2] != len(self.bounds):
            raise ValueError(
                f"intensity bound: expected members [dates, M, {len(self.bounds)}, H, W], got {list(members.shape)}"
            )
        out = members.copy()
        per_channel = members[:, :, 0].size
        self.values += per_channel
        for channel, bound in enumerate(self.bounds):
            values = members[:, :, channel]
            low, high = values < bound.low, values > bound.high
            self.below[bound.variable] = self.below.get(bound.variable, 0) + int(low.sum())
            self.above[bound.variable] = self.above.get(bound.variable, 0) + int(high.sum())
            out[:, :, channel] = np.clip(values, bound.low, bound.high)
        return out

    def shares(self) -> Mapping[str, tuple[float, float]]:
        """(share below, share above) of the values seen so far, per variable."""
        n = max(self.values, 1)
        return {
            b.variable: (self.below.get(b.variable, 0) / n, self.above.get(b.variable, 0) / n)
            for b in self.bounds
        }

    def metrics(self) -> dict[str, float]:
        out = {}
        for name, (below, above) in self.shares().items():
            out[f"bound.{name}.share_low"] = below
            out[f"bound.{name}.share_high"] = above
        return out

    def log(self, log: Logger) -> None:
        for bound in self.bounds:
            below, above = self.shares()[bound.variable]
            log.info(
                "intensity bound %s: [%.4g, %.4g]; clipped %.4f%% of values above, %.4f%% below",
                bound.variable,
                bound.low,
                bound.high,
                100 * above,
                100 * below,
            )
