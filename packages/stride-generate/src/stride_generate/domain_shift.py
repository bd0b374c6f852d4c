"""How far generation's LR inputs lie from the training inputs, per variable, said aloud.

A checkpoint trained on reanalysis and applied to a climate model's fields extrapolates wherever those
fields leave the range it was trained on. Nothing in the network says so, so generation measures it:
for each LR dynamic variable, the inputs' mean and spread in training standard deviations, and the share
of LR cells outside the training split's range [min, max], which is the documented range a model has
seen (the checkpoint carries the train split's statistics, `CheckpointManifest.training_stats`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from pydantic import Field

from stride_contracts import StatsRow
from stride_core.config import StrictConfig


class DomainShiftConfig(StrictConfig):
    """When generation warns that its inputs are unlike the training inputs."""

    mean_sd: float = Field(
        default=0.5,
        gt=0,
        description="Warn when an input's mean lies more than this many training standard deviations from "
        "the training mean.",
    )
    std_ratio: float = Field(
        default=1.5,
        gt=1,
        description="Warn when an input's standard deviation is more than this many times the training one, "
        "or less than its inverse.",
    )
    outside_fraction: float = Field(
        default=0.01,
        ge=0,
        le=1,
        description="Warn when more than this share of LR cells lies outside the training split's [min, max].",
    )


@dataclass(frozen=True)
class VariableShift:
    """One LR variable's inputs against its training statistics (physical units; shifts in training SDs)."""

    variable: str
    units: str
    mean: float
    std: float
    min: float
    max: float
    train_mean: float
    train_std: float
    train_min: float
    train_max: float

    @property
    def mean_sd(self) -> float:
        """(mean - training mean) / training std."""
        return (self.mean - self.train_mean) / self.train_std if self.train_std > 0 else 0.0

    @property
    def std_ratio(self) -> float:
        return self.std / self.train_std if self.train_std > 0 else 1.0

    @property
    def below_sd(self) -> float:
        """How far the smallest input lies below the training minimum, in training SDs (0 when inside)."""
        return max(self.train_min - self.min, 0.0) / self.train_std if self.train_std > 0 else 0.0

    @property
    def above_sd(self) -> float:
        return max(self.max - self.train_max, 0.0) / self.train_std if self.train_std > 0 else 0.0


@dataclass(frozen=True)
class ShiftReport:
    """Per-variable shifts and the share of cells outside the training range."""

    shifts: list[VariableShift]
    outside: dict[str, float]

    def metrics(self) -> dict[str, float]:
        """MLflow metrics: domain_shift.<variable>.{mean_sd, std_ratio, outside_fraction, below_sd, above_sd}."""
        values: dict[str, float] = {}
        for shift in self.shifts:
            prefix = f"domain_shift.{shift.variable}"
            values[f"{prefix}.mean_sd"] = shift.mean_sd
            values[f"{prefix}.std_ratio"] = shift.std_ratio
            values[f"{prefix}.outside_fraction"] = self.outside[shift.variable]
            values[f"{prefix}.below_sd"] = shift.below_sd
            values[f"{prefix}.above_sd"] = shift.above_sd
        return values

    def warnings(self, limits: DomainShiftConfig) -> list[str]:
        """One line per variable whose inputs pass a limit, naming the numbers and what follows."""
        lines = []
        for shift in self.shifts:
            reasons = []
            if abs(shift.mean_sd) > limits.mean_sd:
                reasons.append(
                    f"mean {shift.mean:.4g} {shift.units} is {shift.mean_sd:+.2f} training SDs away"
                )
            if not 1 / limits.std_ratio <= shift.std_ratio <= limits.std_ratio:
                reasons.append(f"spread is {shift.std_ratio:.2f}x the training spread")
            outside = self.outside[shift.variable]
            if outside > limits.outside_fraction:
                reasons.append(
                    f"{100 * outside:.2f}% of LR cells lie outside the training range "
                    f"[{shift.train_min:.4g}, {shift.train_max:.4g}] {shift.units} (up to "
                    f"{max(shift.below_sd, shift.above_sd):.2f} SDs beyond it)"
                )
            if reasons:
                lines.append(
                    f"domain shift in LR input '{shift.variable}': {'; '.join(reasons)}; the model extrapolates "
                    "there: check units and bias-correct the inputs, or train on data that covers them"
                )
        return lines


def measure_shift(
    cond_dynamic: NDArray[np.floating], variables: list[str], training: list[StatsRow]
) -> ShiftReport | None:
    """Compare inputs [time, variable, y, x] (physical units) with the dynamic rows of the training stats.

    None when the checkpoint carries no training statistics (one written before they were recorded).
    """
    rows = {row.variable: row for row in training if row.role == "dynamic"}
    if not all(name in rows for name in variables):
        return None
    shifts: list[VariableShift] = []
    outside: dict[str, float] = {}
    for channel, name in enumerate(variables):
        values = np.asarray(cond_dynamic[:, channel], dtype=np.float64)
        valid = values[np.isfinite(values)]
        row = rows[name]
        if valid.size == 0:
            continue
        shifts.append(
            VariableShift(
                variable=name,
                units=row.units,
                mean=float(valid.mean()),
                std=float(valid.std()),
                min=float(valid.min()),
                max=float(valid.max()),
                train_mean=row.mean,
                train_std=row.std,
                train_min=row.min,
                train_max=row.max,
            )
        )
        outside[name] = float(np.mean((valid < row.min) | (valid > row.max)))
    return ShiftReport(shifts, outside)
