"""What the evaluation families consume: truth and each model's predictions for one variable.

`masked_inputs` is the one place where invalid pixels are applied: wherever the truth is NaN (radar
outside coverage, sea in a land-only dataset) or the dataset's static validity mask is False, the
truth, every member, every point forecast and the PMM are NaN, and the PMM is recomputed from the
masked members so that it pools values only from supervised pixels. Every family then compares like
with like (a spectrum of a model covers exactly the pixels of the truth's spectrum).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime

import numpy as np
from numpy.typing import NDArray

from stride_contracts import MetricRow
from stride_core.calendars import TimeIndex, elapsed_seconds
from stride_core.map_style import MapFrame, is_precipitation, model_colours
from stride_core.metrics import probability_matched_mean
from stride_core.variables import VariableSpec

Array = NDArray[np.float32]


@dataclass(frozen=True)
class Prediction:
    """A model's output: an ensemble [time, member, H, W] (None for deterministic), its point forecast and PMM."""

    point: Array
    members: Array | None = None
    pmm: Array | None = None

    @property
    def ensemble(self) -> NDArray[np.floating]:
        """[time, member, H, W]: the members, or the point forecast as a one-member ensemble."""
        return self.members if self.members is not None else self.point[:, None]

    @property
    def fields(self) -> NDArray[np.floating]:
        """What users receive: the members [time, member, H, W], or the point forecast [time, H, W]."""
        return self.members if self.members is not None else self.point


@dataclass(frozen=True)
class EvalInputs:
    variable: str
    units: str
    times: TimeIndex
    truth: Array
    predictions: dict[str, Prediction] = field(default_factory=dict)
    per_date: bool = True
    high_k_fraction: float = 0.5
    positive_definite: bool = False
    wet_threshold: float = 0.1
    positive_definite_known: bool = True
    """False when the registry has no entry for the variable: families needing the flag warn and skip."""
    area_weights: NDArray[np.float64] | None = None
    """[H, W] relative cell areas (cos latitude on lat/lon grids); None is uniform (equal-area projections)."""
    thresholds: tuple[float, ...] = ()
    """Event thresholds in the variable's units (Brier, reliability, FSS, exceedance ratios)."""
    threshold_quantiles: tuple[float | None, ...] = ()
    """The truth quantile each threshold was taken at (None for user-given thresholds)."""
    quantile_levels: tuple[float, ...] = (0.9, 0.95, 0.99, 0.999)
    fss_scales: tuple[int, ...] = (1, 5, 11, 25)
    pool_factors: tuple[int, ...] = (2, 4, 8)
    variogram_lags: tuple[int, ...] = (1, 2, 4, 8, 16, 32)
    lags: tuple[int, ...] = (1,)
    dates: tuple[datetime, ...] = ()
    """Dates the dates family scores one by one."""
    top_dates: int = 3
    """The dates family also scores the `top_dates` dates of highest spatial-mean truth (wettest/hottest)."""
    lr: Array | None = None
    """[time, y_lr, x_lr]: this variable's LR conditioning, when it is among the LR inputs."""
    factor: int = 1
    lr_by_model: dict[str, Array] = field(default_factory=dict)
    """Each samples store's own LR conditioning of this variable (a store generated from perturbed inputs
    differs from the evaluated one's: the features family measures the response)."""
    evaluated: str | None = None
    """The label of --samples (the unperturbed reference of a perturbation response)."""
    references: tuple[str, ...] = ()
    """Models that skill scores (crpss) are computed against: the baselines."""
    frame: MapFrame = field(default_factory=MapFrame)
    """Where the maps lie (lat/lon or projected km axes, the land fraction outlined, row 0 north or south):
    map panels are drawn north-up on it."""
    model_labels: tuple[str, ...] = ()
    """Every model label of the run (evaluated store, compared stores, baselines): the line and bar figures
    colour each model alike from them (`colours`)."""
    n_bins: int = 50
    """Bins of value histograms and the Perkins skill score."""
    spec: VariableSpec | None = None
    """The variable's registry entry (long name, colour map, plot_range, precipitation group): the family
    figures are styled from it; None draws them with the generic style."""

    @property
    def title(self) -> str:
        """The variable as figure titles name it: 'long name (key)', or the key alone without an entry."""
        return f"{self.spec.long_name} ({self.variable})" if self.spec is not None else self.variable

    @property
    def axis_label(self) -> str:
        """The variable's values on an axis: 'long name [units]'."""
        name = self.spec.long_name if self.spec is not None else self.variable
        return f"{name} [{self.units}]" if self.units.strip() else name

    @property
    def precipitation(self) -> bool:
        """Whether the figures use the precipitation scales (1-2-5 levels, square-root errors)."""
        return is_precipitation(self.spec, self.units)

    def colours(self, models: Iterable[str] = ()) -> dict[str, str]:
        """One colour per model, the same in every figure of the run (`stride_core.map_style.model_colours`)."""
        return model_colours([*self.model_labels, *self.predictions, *models, "truth"])

    @property
    def valid(self) -> NDArray[np.bool_]:
        """[time, H, W]: where the truth is valid."""
        return ~np.isnan(self.truth)

    @property
    def weights(self) -> NDArray[np.float64]:
        """[H, W] area weights (ones when uniform)."""
        if self.area_weights is None:
            return np.ones(self.truth.shape[-2:])
        return self.area_weights

    def consecutive_pairs(self, lag: int) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """Index pairs (i, j) of dates exactly `lag` time steps apart (the step: the smallest spacing)."""
        if len(self.times) < 2:
            return np.array([], dtype=np.int64), np.array([], dtype=np.int64)
        values = np.round(elapsed_seconds(self.times)).astype(np.int64)  # any calendar
        step = int(np.min(np.diff(values)))
        position = {int(v): i for i, v in enumerate(values)}
        pairs = [
            (i, position[int(v) + lag * step])
            for i, v in enumerate(values)
            if int(v) + lag * step in position
        ]
        if not pairs:
            return np.array([], dtype=np.int64), np.array([], dtype=np.int64)
        first, second = zip(*pairs, strict=True)
        return np.array(first, dtype=np.int64), np.array(second, dtype=np.int64)

    def row(
        self,
        model: str,
        metric: str,
        family: str,
        value: float,
        *,
        units: str | None = None,
        date: str | None = None,
        wavenumber: float | None = None,
        threshold: float | None = None,
        scale: float | None = None,
        quantile: float | None = None,
        lag: float | None = None,
        bin: float | None = None,
        reference: str | None = None,
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
            threshold=threshold,
            scale=scale,
            quantile=quantile,
            lag=lag,
            bin=bin,
            reference=reference,
        )


def mask_prediction(prediction: Prediction, valid: NDArray[np.bool_]) -> Prediction:
    """`prediction` NaN wherever `valid` [time, H, W] is False, its PMM recomputed over the valid pixels only.

    Where every pixel is valid the prediction is returned as it is (no copy of the members, whose size
    bounds the evaluation's memory, and the stored PMM already pools every pixel)."""
    if valid.all():
        return prediction
    point = np.where(valid, prediction.point, np.nan).astype(prediction.point.dtype, copy=False)
    if prediction.members is None:
        return Prediction(
            point=point, pmm=None if prediction.pmm is None else np.where(valid, prediction.pmm, np.nan)
        )
    members = np.where(valid[:, None], prediction.members, np.nan).astype(
        prediction.members.dtype, copy=False
    )
    pmm = None
    if prediction.pmm is not None:
        pmm = probability_matched_mean(members, member_axis=1, spatial_axes=(-2, -1))
    return Prediction(point=point, members=members, pmm=pmm)


def masked_inputs(inputs: EvalInputs, static_valid: NDArray[np.bool_] | None = None) -> EvalInputs:
    """`inputs` with the truth NaN where `static_valid` [H, W] is False and every prediction masked like it."""
    truth = inputs.truth
    if static_valid is not None:
        truth = np.where(static_valid, truth, np.nan).astype(truth.dtype, copy=False)
    valid = ~np.isnan(truth)
    predictions: Mapping[str, Prediction] = {
        name: mask_prediction(prediction, valid) for name, prediction in inputs.predictions.items()
    }
    return replace(inputs, truth=truth, predictions=dict(predictions))
