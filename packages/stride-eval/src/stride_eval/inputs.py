"""What the evaluation families consume: truth and each model's predictions for one variable."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from stride_contracts import MetricRow

Array = NDArray[np.float32]


@dataclass(frozen=True)
class Prediction:
    """A model's output: an ensemble [time, member, H, W] (None for deterministic), its point forecast and PMM."""

    point: Array
    members: Array | None = None
    pmm: Array | None = None


@dataclass(frozen=True)
class EvalInputs:
    variable: str
    units: str
    times: pd.DatetimeIndex
    truth: Array
    predictions: dict[str, Prediction] = field(default_factory=dict)
    per_date: bool = True
    high_k_fraction: float = 0.5
    positive_definite: bool = False
    wet_threshold: float = 0.1

    def row(
        self,
        model: str,
        metric: str,
        family: str,
        value: float,
        *,
        units: str | None = None,
        date: datetime | None = None,
        wavenumber: float | None = None,
    ) -> MetricRow:
        return MetricRow(
            model=model,
            variable=self.variable,
            metric=metric,
            family=family,
            value=float(value),
            units=self.units if units is None else units,
            date=date,
            wavenumber=wavenumber,
        )
