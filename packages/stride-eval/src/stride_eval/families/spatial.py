"""Spatial family: maps of bias, MAE, RMSE and correlation, their area-weighted means, and the FSS.

Maps are per-pixel scores of the point forecast (ensemble mean) over the dates. Their aggregates weigh
each pixel by its area: cos(latitude) on lat/lon grids, uniform on projected (equal-area) grids, so a
high-latitude pixel does not count as much as an equatorial one. RMSE aggregates the squared error
(sqrt of the weighted mean MSE map). The fractions skill score is of the members (pooled over members and
dates, Roberts and Lean 2008) at every threshold and neighbourhood width; invalid pixels are no event in
either field. The semivariogram (Matheron's estimator along rows and columns, pooled over dates and
members) of the truth and each model at `variogram_lags`: `variogram` rows per lag (scale = lag in pixels,
units the variable's squared) and `variogram_log_error`, the mean over lags of |log10(gamma_model /
gamma_truth)| (0 when the model's spatial structure matches; log so every lag counts alike).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from stride_contracts import MetricRow
from stride_core.map_style import difference_style, draw_map, magnitude_style
from stride_core.maps import new_figure
from stride_core.metrics import fss_sums, semivariogram, semivariogram_sums, weighted_mean
from stride_eval.families.base import Family, finite
from stride_eval.families.panels import panel_colour_bar, threshold_styles
from stride_eval.families.temporal import PairSums
from stride_eval.inputs import EvalInputs

NAME = "spatial"


def error_sums(point: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """[4, H, W]: count, sum e, sum |e|, sum e^2 over the dates (axis 0) where the error e is finite."""
    error = point.astype(np.float64) - truth
    keep = np.isfinite(error)
    e = np.where(keep, error, 0.0)
    return np.stack([keep.sum(axis=0), e.sum(axis=0), np.abs(e).sum(axis=0), (e * e).sum(axis=0)])


def maps_from_sums(terms: np.ndarray) -> dict[str, np.ndarray]:
    """[H, W] maps of bias, MAE and MSE from `error_sums` (of one or many chunks); NaN where never valid."""
    count, total, absolute, squared = terms
    with np.errstate(invalid="ignore", divide="ignore"):
        return {"bias": total / count, "mae": absolute / count, "mse": squared / count}


def score_maps(point: np.ndarray, truth: np.ndarray) -> dict[str, np.ndarray]:
    """[H, W] maps over time of the point forecast's bias, MAE and MSE."""
    return maps_from_sums(error_sums(point, truth))


class SpatialSums:
    """The spatial family's scores as sums over chunks of dates (`update`), turned into rows by `rows`.

    Per pixel: the count and sums of the error, |error| and error^2 of the point forecast, and the pair sums
    of its correlation with the truth (`temporal.PairSums`); per threshold and window the two FSS sums; per
    lag the semivariogram sums. All add up over dates, so `compute` (one chunk of every date) and the
    streamed run give the same rows.
    """

    def __init__(self, template: EvalInputs) -> None:
        self.template = template
        height, width = template.truth.shape[-2:]
        self.sizes = [s for s in template.fss_scales if s <= min(height, width)]
        self.lags = tuple(h for h in template.variogram_lags if h < min(height, width))
        self.errors: dict[str, np.ndarray] = {}
        """model -> [4, H, W]: count, sum e, sum |e|, sum e^2 over the dates with a finite error."""
        self.correlation: dict[str, PairSums] = {}
        self.fss: dict[tuple[str, float, int], list[float]] = {}
        self.variogram: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def update(self, chunk: EvalInputs) -> None:
        for model, prediction in chunk.predictions.items():
            terms = error_sums(prediction.point, chunk.truth)
            self.errors[model] = self.errors[model] + terms if model in self.errors else terms
            self.correlation.setdefault(model, PairSums()).add(prediction.point, chunk.truth)
            fields = prediction.ensemble  # [time, member, H, W]
            masked = np.where(np.isnan(chunk.truth)[:, None], np.nan, fields)
            fss = fss_sums(masked, chunk.truth, thresholds=chunk.thresholds, sizes=self.sizes, member_axis=1)
            for threshold in chunk.thresholds:
                for size in self.sizes:
                    numerator, denominator = fss[(float(threshold), int(size))]
                    sums = self.fss.setdefault((model, threshold, size), [0.0, 0.0])
                    sums[0] += numerator
                    sums[1] += denominator
            if self.lags:
                total, count = semivariogram_sums(prediction.fields, self.lags)
                previous = self.variogram.get(model)
                self.variogram[model] = (
                    (total, count) if previous is None else (previous[0] + total, previous[1] + count)
                )

    def rows(self) -> list[MetricRow]:
        inputs = self.template
        rows: list[MetricRow] = []
        if not inputs.valid.any():
            return rows
        rows += self._variogram_rows()
        for model, terms in self.errors.items():
            maps = maps_from_sums(terms)
            aggregates = {
                "bias_weighted": weighted_mean(maps["bias"], inputs.weights),
                "mae_weighted": weighted_mean(maps["mae"], inputs.weights),
                "rmse_weighted": float(np.sqrt(weighted_mean(maps["mse"], inputs.weights))),
                "correlation_weighted": self.correlation[model].mean_correlation(inputs.weights),
            }
            for metric, value in aggregates.items():
                if finite(value):
                    units = "1" if metric.startswith("corr") else None
                    rows.append(inputs.row(model, metric, NAME, value, units=units))
            for threshold, level in zip(inputs.thresholds, inputs.threshold_quantiles, strict=True):
                for size in self.sizes:
                    numerator, denominator = self.fss.get((model, threshold, size), [0.0, 0.0])
                    if denominator > 0:
                        rows.append(
                            inputs.row(
                                model,
                                "fss",
                                NAME,
                                1.0 - numerator / denominator,
                                units="1",
                                threshold=threshold,
                                quantile=level,
                                scale=float(size),
                            )
                        )
        return rows

    def figure(self, rows: Sequence[MetricRow]) -> Figure | None:
        """The spatial figure of a streamed run, from the summed score maps."""
        maps = {model: maps_from_sums(terms) for model, terms in self.errors.items()}
        return maps_figure(rows, self.template, maps)

    def _variogram_rows(self) -> list[MetricRow]:
        inputs = self.template
        if not self.lags:
            return []
        units = f"({inputs.units})^2"
        truth = semivariogram(inputs.truth, self.lags)
        rows = [
            inputs.row("truth", "variogram", NAME, g, units=units, scale=float(h))
            for h, g in zip(self.lags, truth, strict=True)
        ]
        for model, (total, count) in self.variogram.items():
            with np.errstate(invalid="ignore", divide="ignore"):
                gamma = np.where(count > 0, total / (2 * np.maximum(count, 1)), np.nan)
            rows += [
                inputs.row(model, "variogram", NAME, g, units=units, scale=float(h))
                for h, g in zip(self.lags, gamma, strict=True)
            ]
            usable = (truth > 0) & (gamma > 0)
            if usable.any():
                error = float(np.mean(np.abs(np.log10(gamma[usable] / truth[usable]))))
                rows.append(inputs.row(model, "variogram_log_error", NAME, error, units="1"))
        return rows


def compute(inputs: EvalInputs) -> list[MetricRow]:
    sums = SpatialSums(inputs)
    sums.update(inputs)
    return sums.rows()


def plot(rows: Sequence[MetricRow], inputs: EvalInputs) -> Figure | None:
    """Per model: bias and RMSE maps of the point forecast; last column: FSS against neighbourhood width
    (in the model's colour, one line style per threshold)."""
    maps = {model: score_maps(p.point, inputs.truth) for model, p in inputs.predictions.items()}
    return maps_figure(rows, inputs, maps)


def maps_figure(
    rows: Sequence[MetricRow], inputs: EvalInputs, maps: dict[str, dict[str, np.ndarray]]
) -> Figure | None:
    """The spatial figure from each model's score maps (`score_maps`, or `maps_from_sums` of a streamed run).

    Every model's bias map shares one diverging scale centred on zero and every RMSE map one scale from
    zero, so the models compare at a glance; pixels the truth never covers are grey.
    """
    if not maps:
        return None
    models = list(maps)
    fig = new_figure((4.0 * 3, 3.2 * len(models) + 0.6))
    axes = fig.subplots(len(models), 3, squeeze=False)
    rmse_maps = {model: np.sqrt(maps[model]["mse"]) for model in models}
    scales = {
        "bias": difference_style(
            [maps[m]["bias"] for m in models], inputs.units, "bias (model - truth)", inputs.precipitation
        ),
        "RMSE": magnitude_style(list(rmse_maps.values()), inputs.units, "RMSE", inputs.precipitation),
    }
    colours = inputs.colours(models)
    styles = threshold_styles(r.threshold for r in rows if r.metric == "fss")
    for i, model in enumerate(models):
        for column, (ax, (name, image)) in enumerate(
            zip(axes[i][:2], (("bias", maps[model]["bias"]), ("RMSE", rmse_maps[model])), strict=True)
        ):
            draw_map(
                ax,
                image,
                scales[name],
                inputs.frame,
                f"{model}: {name} of the mean",
                xlabel=i == len(models) - 1,
                ylabel=column == 0,
            )
        fss = [r for r in rows if r.metric == "fss" and r.model == model]
        for threshold in sorted({r.threshold for r in fss if r.threshold is not None}):
            mine = sorted((r for r in fss if r.threshold == threshold), key=lambda r: r.scale or 0)
            line, marker = styles[threshold]
            axes[i][2].plot(
                [r.scale for r in mine],
                [r.value for r in mine],
                ls=line,
                marker=marker,
                color=colours[model],
                label=f"> {threshold:.3g} {inputs.units}",
            )
        axes[i][2].set(
            title=f"{model}: FSS", xlabel="neighbourhood width (pixels)", ylabel="FSS", ylim=(0, 1)
        )
        axes[i][2].title.set_fontsize(8)
        if fss:
            axes[i][2].legend(fontsize=7)
    for column, name in enumerate(("bias", "RMSE")):
        panel_colour_bar(fig, scales[name], list(axes[:, column]))
    fig.suptitle(f"{inputs.title}: maps over {len(inputs.times)} dates", fontsize=10)
    return fig


FAMILY = Family(NAME, compute, plot)
compute_and_plot = FAMILY.compute_and_plot
