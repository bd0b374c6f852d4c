"""What a family is: a name, `compute(inputs) -> rows` and `plot(rows, inputs) -> figure or None`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from matplotlib.figure import Figure
from numpy.typing import NDArray

from stride_contracts import MetricRow
from stride_core.progress import get_logger
from stride_eval.inputs import EvalInputs, Prediction

log = get_logger("stride-eval")

Compute = Callable[[EvalInputs], list[MetricRow]]
Plot = Callable[[Sequence[MetricRow], EvalInputs], Figure | None]


@dataclass(frozen=True)
class Family:
    """One evaluation family. Calling it computes its rows (so a Family is also a plain compute function)."""

    name: str
    compute: Compute
    plot: Plot
    needs_positive_definite: bool = False
    """Whether some rows need the variable's positive-definite flag (unknown flag: one warning, rows skipped)."""

    def __call__(self, inputs: EvalInputs) -> list[MetricRow]:
        return self.compute(inputs)

    def compute_and_plot(self, inputs: EvalInputs) -> tuple[list[MetricRow], Figure | None]:
        rows = self.compute(inputs)
        return rows, self.plot(rows, inputs)


def no_plot(rows: Sequence[MetricRow], inputs: EvalInputs) -> Figure | None:
    """For families whose rows another family's figure already shows."""
    return None


def pooled_values(prediction: Prediction, valid: NDArray[np.bool_]) -> NDArray[np.floating]:
    """Every finite value of what users receive (all members, else the point forecast), as one sample.

    The values keep their dtype, so thresholds compare as stride-stats compares them (float32 0.1 is not
    above 0.1).
    Only the pixels where the truth is valid (`valid` [time, H, W]) count.
    """
    fields = np.asarray(prediction.fields)
    values = fields[np.broadcast_to(valid[:, None] if fields.ndim == 4 else valid, fields.shape)]
    return values[np.isfinite(values)]


def is_broken(prediction: Prediction, valid: NDArray[np.bool_]) -> bool:
    """Whether the prediction is NaN or infinite somewhere the truth is valid (`valid` [time, H, W])."""
    fields = prediction.fields
    return not bool(
        np.isfinite(
            fields[np.broadcast_to(valid[:, None] if fields.ndim == 4 else valid, fields.shape)]
        ).all()
    )


def truth_values(inputs: EvalInputs) -> NDArray[np.floating]:
    values = np.asarray(inputs.truth).ravel()
    return values[np.isfinite(values)]


def finite(value: float) -> bool:
    """Whether a score is a number a row can hold (rows never hold NaN or inf)."""
    return value == value and abs(value) != float("inf")


def warn_unknown_positive_definite(family: str, inputs: EvalInputs) -> None:
    log.warning(
        "%s: '%s' has no registry entry saying whether it is positive-definite: its wet-day rows are skipped "
        "(add it to a variables_file with is_positive_definite)",
        family,
        inputs.variable,
    )
