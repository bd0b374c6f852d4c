"""Dates family: scores of chosen dates one by one, and quicklooks of them.

The dates are the configured ones present in the samples, plus the `top_dates` dates of highest
spatial-mean truth (the wettest for precipitation, the hottest for temperature). Rows carry the date:
CRPS and RMSE of the ensemble mean (unless the per-date rows of the probabilistic and deterministic
families already hold them), MAE and bias of the ensemble mean, and the ensemble spread.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from stride_contracts import MetricRow
from stride_core.calendars import date_key, iso
from stride_core.maps import new_figure
from stride_core.metrics import bias, crps_ensemble_fair, mae, rmse
from stride_eval.families.base import Family, finite
from stride_eval.inputs import EvalInputs

NAME = "dates"


def chosen(inputs: EvalInputs) -> list[int]:
    """Indices of the configured dates found in the samples, then of the top_dates highest-mean ones."""
    position = {date_key(t): i for i, t in enumerate(inputs.times)}
    picked = [position[date_key(d)] for d in inputs.dates if date_key(d) in position]
    if inputs.top_dates:
        with np.errstate(invalid="ignore"):
            means = np.array([np.nanmean(f) if np.isfinite(f).any() else -np.inf for f in inputs.truth])
        picked += [
            int(i) for i in np.argsort(-means, kind="stable")[: inputs.top_dates] if np.isfinite(means[i])
        ]
    return list(dict.fromkeys(picked))


def compute(inputs: EvalInputs) -> list[MetricRow]:
    return rows_at(inputs, chosen(inputs))


class DatesRows:
    """The dates family over chunks of dates: the dates are chosen once from the whole truth (`template`),
    and each chunk scores those it holds (each date's scores are of that date alone)."""

    def __init__(self, template: EvalInputs) -> None:
        self.chosen = chosen(template)
        self.position = {date_key(t): i for i, t in enumerate(template.times)}
        self.found: list[MetricRow] = []

    def update(self, chunk: EvalInputs) -> None:
        offset = self.position[date_key(chunk.times[0])]
        local = [i - offset for i in self.chosen if offset <= i < offset + len(chunk.times)]
        self.found += rows_at(chunk, local)

    def rows(self) -> list[MetricRow]:
        return self.found


def rows_at(inputs: EvalInputs, indices: list[int]) -> list[MetricRow]:
    """The rows of the dates at `indices` of `inputs`."""
    rows: list[MetricRow] = []
    for index in indices:
        date = iso(inputs.times[index])
        truth = inputs.truth[index]
        for model, prediction in inputs.predictions.items():
            point = prediction.point[index]
            scores = {"mae_mean": mae(point, truth), "bias_mean": bias(point, truth)}
            if not inputs.per_date:
                crps = crps_ensemble_fair(prediction.ensemble[index], truth, member_axis=0)
                scores |= {"crps": float(np.nanmean(crps)), "rmse_mean": rmse(point, truth)}
            if prediction.members is not None and prediction.members.shape[1] > 1:
                spread = np.nanmean(np.var(prediction.members[index], axis=0, ddof=1))
                scores["spread"] = float(np.sqrt(spread))
            for metric, value in scores.items():
                if finite(float(value)):
                    rows.append(inputs.row(model, metric, NAME, float(value), date=date))
    return rows


def plot(rows: Sequence[MetricRow], inputs: EvalInputs) -> Figure | None:
    """Quicklook per chosen date: truth, then each model's first member (or point forecast), one colour scale."""
    indices = chosen(inputs)
    if not indices:
        return None
    models = list(inputs.predictions)
    fig = new_figure((3.2 * (1 + len(models)), 2.8 * len(indices)))
    axes = fig.subplots(len(indices), 1 + len(models), squeeze=False)
    origin = "upper" if inputs.lat_descending else "lower"
    for row, index in enumerate(indices):
        truth = inputs.truth[index]
        low, high = np.nanpercentile(truth, [1, 99]) if np.isfinite(truth).any() else (0.0, 1.0)
        panels = [("truth", truth)]
        for model in models:
            prediction = inputs.predictions[model]
            field = (
                prediction.members[index, 0] if prediction.members is not None else prediction.point[index]
            )
            panels.append((model if prediction.members is None else f"{model} (member 0)", field))
        for ax, (title, field) in zip(axes[row], panels, strict=True):
            shown = ax.imshow(field, vmin=low, vmax=high, origin=origin, cmap="viridis")
            ax.set_title(f"{title}, {inputs.times[index]:%Y-%m-%d %H:%M}", fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
        fig.colorbar(shown, ax=axes[row][-1], label=f"{inputs.variable} ({inputs.units})")
    return fig


FAMILY = Family(NAME, compute, plot)
compute_and_plot = FAMILY.compute_and_plot
