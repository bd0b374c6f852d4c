"""Features family: consistency of the ensemble with the LR input it was conditioned on.

Each member is coarsened conservatively (area-weighted block means, as stride-data made the LR input when
`lr_method` is conservative_coarsening) to the LR grid and compared with the LR conditioning of the same
variable: `lr_rmse`, `lr_bias` per member, averaged over members, and the truth's own (the floor: zero up to
the masking of invalid cells when the LR input was coarsened from this truth; the LR source's mismatch when
it was regridded from another source). Only when the target variable is among the LR inputs.

Perturbation response: a store compared with --compare whose LR conditioning of the variable differs from
the evaluated store's (generated from perturbed inputs, e.g. +2 K, as stride-train's inline diagnostic
does) gets `perturbation_imposed` (mean LR change), `perturbation_response` (mean change of the ensemble
mean over the valid HR pixels) and `perturbation_ratio` = response / imposed, with the evaluated store as
`reference`. Near 1 the model carries the LR change through; near 0 it ignores its input and would erase
a climate-change signal. Same seeds in both stores (common random numbers) make the sampling noise cancel.
"""

from __future__ import annotations

import numpy as np

from stride_contracts import MetricRow
from stride_core.grid import coarsen_conservative
from stride_eval.families.base import Family, finite, no_plot
from stride_eval.inputs import EvalInputs

NAME = "features"
MIN_VALID_FRACTION = 0.5


class FeaturesSums:
    """The features family over chunks of dates: per model and member, the sums of the coarsened error against
    the LR input and its count; for the perturbation response, the sums of the LR change and the response
    and the largest change. All add up over dates, so `compute` (one chunk of every date) and the streamed
    run give the same rows."""

    def __init__(self, template: EvalInputs) -> None:
        self.template = template
        self.lr_sums: dict[str, np.ndarray] = {}
        """model -> [member, 3]: sum error, sum error^2, count over the valid LR cells."""
        self.scale = 0.0
        self.perturbation: dict[str, list[float]] = {}
        """model -> [largest |change|, sum change, count, sum response, count]."""

    def update(self, chunk: EvalInputs) -> None:
        self._perturbation(chunk)
        if chunk.lr is None or chunk.factor < 1:
            return
        lr = chunk.lr.astype(np.float64)
        coarse_truth = coarsen_conservative(
            chunk.truth, chunk.factor, chunk.weights, min_valid_fraction=MIN_VALID_FRACTION
        )
        valid = np.isfinite(coarse_truth) & np.isfinite(lr)
        reference = np.where(valid, lr, np.nan)
        candidates = {"truth": coarse_truth[:, None]}
        for model, prediction in chunk.predictions.items():
            candidates[model] = coarsen_conservative(
                prediction.ensemble, chunk.factor, chunk.weights, min_valid_fraction=MIN_VALID_FRACTION
            )
        for model, coarse in candidates.items():
            own = chunk.lr_by_model.get(model)  # a store from perturbed inputs is held to its own input
            target = reference if own is None else np.where(valid, own.astype(np.float64), np.nan)
            keep = ~np.isnan(target)
            error = coarse.astype(np.float64) - target[:, None]  # [time, member, y, x]
            mask = np.broadcast_to(keep[:, None], error.shape)
            e = np.where(mask, error, 0.0)  # NaN members at valid cells stay NaN
            terms = np.stack(
                [e.sum(axis=(0, 2, 3)), (e * e).sum(axis=(0, 2, 3)), mask.sum(axis=(0, 2, 3))], 1
            )
            self.lr_sums[model] = self.lr_sums[model] + terms if model in self.lr_sums else terms

    def _perturbation(self, chunk: EvalInputs) -> None:
        reference = chunk.evaluated
        if reference is None or reference not in chunk.lr_by_model or reference not in chunk.predictions:
            return
        base_lr = chunk.lr_by_model[reference].astype(np.float64)
        base = chunk.predictions[reference].point.astype(np.float64)
        if np.isfinite(base_lr).any():
            self.scale = max(self.scale, float(np.nanmax(np.abs(base_lr))))
        for model, lr in chunk.lr_by_model.items():
            if model == reference or model not in chunk.predictions or lr.shape != base_lr.shape:
                continue
            change = lr.astype(np.float64) - base_lr
            response = chunk.predictions[model].point.astype(np.float64) - base
            sums = self.perturbation.setdefault(model, [0.0, 0.0, 0, 0.0, 0])
            sums[0] = max(sums[0], float(np.nanmax(np.abs(change), initial=0.0)))
            sums[1] += float(np.nansum(change))
            sums[2] += int(np.sum(~np.isnan(change)))
            sums[3] += float(np.nansum(response))
            sums[4] += int(np.sum(~np.isnan(response)))

    def rows(self) -> list[MetricRow]:
        inputs = self.template
        rows = self._perturbation_rows()
        for model, terms in self.lr_sums.items():
            total, squared, count = terms.T
            with np.errstate(invalid="ignore", divide="ignore"):
                per_member = {"lr_rmse": np.sqrt(squared / count), "lr_bias": total / count}
            for metric, values in per_member.items():
                value = float(np.mean(values))
                if finite(value):
                    rows.append(inputs.row(model, metric, NAME, value))
        return rows

    def _perturbation_rows(self) -> list[MetricRow]:
        inputs = self.template
        reference = inputs.evaluated
        rows: list[MetricRow] = []
        for model, (largest, change, n_change, response_sum, n_response) in self.perturbation.items():
            if not largest > PERTURBED_RTOL * max(self.scale, 1.0):
                continue  # the same inputs: a model comparison, not a perturbation
            imposed = change / n_change if n_change else float("nan")
            response = response_sum / n_response if n_response else float("nan")
            values: list[tuple[str, float, str | None]] = [
                ("perturbation_imposed", imposed, None),
                ("perturbation_response", response, None),
            ]
            if imposed != 0:
                values.append(("perturbation_ratio", response / imposed, "1"))
            rows += [
                inputs.row(model, metric, NAME, value, units=units, reference=reference)
                for metric, value, units in values
                if finite(value)
            ]
        return rows


def compute(inputs: EvalInputs) -> list[MetricRow]:
    sums = FeaturesSums(inputs)
    sums.update(inputs)
    return sums.rows()


PERTURBED_RTOL = 1e-6
"""An LR input counts as perturbed where it differs from the evaluated one by more than this (relative)."""


FAMILY = Family(NAME, compute, no_plot)
compute_and_plot = FAMILY.compute_and_plot
