"""Dates family: scores of chosen dates one by one, and quicklooks of them.

The dates are the configured ones present in the samples, plus the `top_dates` dates of highest
spatial-mean truth (the wettest for precipitation, the hottest for temperature). Rows carry the date:
CRPS and RMSE of the ensemble mean (unless the per-date rows of the probabilistic and deterministic
families already hold them), MAE and bias of the ensemble mean, and the ensemble spread.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from stride_contracts import MetricRow
from stride_core.calendars import date_key, iso
from stride_core.map_style import draw_map, field_style
from stride_core.maps import new_figure
from stride_core.metrics import bias, crps_ensemble_fair, mae, rmse
from stride_eval.families.base import Family, finite
from stride_eval.families.panels import panel_colour_bar
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
    and each chunk scores those it holds (each date's scores are of that date alone) and keeps their
    panels for the figure (a few fields per model: the chosen dates are few)."""

    def __init__(self, template: EvalInputs) -> None:
        self.template = template
        self.chosen = chosen(template)
        self.position = {date_key(t): i for i, t in enumerate(template.times)}
        self.found: list[MetricRow] = []
        self.panels: dict[int, DatePanels] = {}

    def update(self, chunk: EvalInputs) -> None:
        offset = self.position[date_key(chunk.times[0])]
        local = [i - offset for i in self.chosen if offset <= i < offset + len(chunk.times)]
        self.found += rows_at(chunk, local)
        self.panels |= {offset + i: panels_at(chunk, i) for i in local}

    def rows(self) -> list[MetricRow]:
        return self.found

    def figure(self, rows: Sequence[MetricRow]) -> Figure | None:
        return dates_figure(self.template, [self.panels[i] for i in self.chosen if i in self.panels])


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


@dataclass(frozen=True)
class DatePanels:
    """What the quicklook of one date shows: its time, the truth and each model's field."""

    time: Any
    truth: np.ndarray
    fields: dict[str, tuple[str, np.ndarray]]
    """model -> (panel title, field): the first member of an ensemble, else the point forecast."""


def panels_at(inputs: EvalInputs, index: int) -> DatePanels:
    fields = {}
    for model, prediction in inputs.predictions.items():
        if prediction.members is not None:
            fields[model] = (f"{model} (member 1)", np.array(prediction.members[index, 0]))
        else:
            fields[model] = (model, np.array(prediction.point[index]))
    return DatePanels(inputs.times[index], np.array(inputs.truth[index]), fields)


def plot(rows: Sequence[MetricRow], inputs: EvalInputs) -> Figure | None:
    """Quicklook per chosen date: truth, then each model's first member (or point forecast)."""
    return dates_figure(inputs, [panels_at(inputs, i) for i in chosen(inputs)])


def dates_figure(inputs: EvalInputs, dates: Sequence[DatePanels]) -> Figure | None:
    """One row per date: the truth, then each model's field, on the variable's registry scale (one scale
    for every date, so the wettest and the third wettest compare), NaN grey."""
    if not dates:
        return None
    models = list(dates[0].fields)
    fig = new_figure((2.9 * (1 + len(models)) + 0.4, 2.7 * len(dates) + 1.0))
    axes = fig.subplots(len(dates), 1 + len(models), squeeze=False)
    shown = [d.truth for d in dates] + [field for d in dates for _, field in d.fields.values()]
    scale = field_style(inputs.spec, inputs.units, shown)
    for row, date in enumerate(dates):
        panels = [("truth", date.truth), *date.fields.values()]
        stamp = iso(date.time)[:16].replace("T", " ")
        for column, (ax, (title, field)) in enumerate(zip(axes[row], panels, strict=True)):
            draw_map(
                ax,
                field,
                scale,
                inputs.frame,
                f"{stamp}: {title}",
                xlabel=row == len(dates) - 1,
                ylabel=column == 0,
            )
    panel_colour_bar(fig, scale, list(axes.ravel()))
    fig.suptitle(f"{inputs.title}: chosen dates", fontsize=10)
    return fig


FAMILY = Family(NAME, compute, plot)
compute_and_plot = FAMILY.compute_and_plot
