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

import warnings
from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from stride_contracts import MetricRow
from stride_core.maps import new_figure
from stride_core.metrics import fss_terms, pointwise_correlation, semivariogram, weighted_mean
from stride_eval.families.base import Family, finite
from stride_eval.inputs import EvalInputs

NAME = "spatial"


def score_maps(point: np.ndarray, truth: np.ndarray) -> dict[str, np.ndarray]:
    """[H, W] maps over time of bias, MAE, MSE and correlation; NaN where a pixel is never valid."""
    error = point.astype(np.float64) - truth
    with np.errstate(invalid="ignore"):
        return {
            "bias": np.nanmean(error, axis=0)
            if np.isfinite(error).any()
            else np.full(truth.shape[1:], np.nan),
            "mae": np.nanmean(np.abs(error), axis=0),
            "mse": np.nanmean(error**2, axis=0),
            "correlation": pointwise_correlation(point, truth, axis=0),
        }


def compute(inputs: EvalInputs) -> list[MetricRow]:
    rows: list[MetricRow] = []
    never_valid = ~inputs.valid.any(axis=0)
    if never_valid.all():
        return rows
    height, width = inputs.truth.shape[-2:]
    sizes = [s for s in inputs.fss_scales if s <= min(height, width)]
    rows += variogram_rows(inputs)
    for model, prediction in inputs.predictions.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN pixels give NaN maps, skipped below
            maps = score_maps(prediction.point, inputs.truth)
        aggregates = {
            "bias_weighted": weighted_mean(maps["bias"], inputs.weights),
            "mae_weighted": weighted_mean(maps["mae"], inputs.weights),
            "rmse_weighted": float(np.sqrt(weighted_mean(maps["mse"], inputs.weights))),
            "correlation_weighted": weighted_mean(maps["correlation"], inputs.weights),
        }
        for metric, value in aggregates.items():
            if finite(value):
                rows.append(
                    inputs.row(model, metric, NAME, value, units="1" if metric.startswith("corr") else None)
                )
        fields = prediction.ensemble  # [time, member, H, W]
        truth = np.broadcast_to(inputs.truth[:, None], fields.shape)
        for threshold, level in zip(inputs.thresholds, inputs.threshold_quantiles, strict=True):
            for size in sizes:
                numerator, denominator = fss_terms(
                    np.where(np.isnan(truth), np.nan, fields), truth, threshold=threshold, size=size
                )
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


def variogram_rows(inputs: EvalInputs) -> list[MetricRow]:
    lags = tuple(h for h in inputs.variogram_lags if h < min(inputs.truth.shape[-2:]))
    if not lags:
        return []
    units = f"({inputs.units})^2"
    truth = semivariogram(inputs.truth, lags)
    rows = [
        inputs.row("truth", "variogram", NAME, g, units=units, scale=float(h))
        for h, g in zip(lags, truth, strict=True)
    ]
    for model, prediction in inputs.predictions.items():
        gamma = semivariogram(prediction.fields, lags)
        rows += [
            inputs.row(model, "variogram", NAME, g, units=units, scale=float(h))
            for h, g in zip(lags, gamma, strict=True)
        ]
        usable = (truth > 0) & (gamma > 0)
        if usable.any():
            error = float(np.mean(np.abs(np.log10(gamma[usable] / truth[usable]))))
            rows.append(inputs.row(model, "variogram_log_error", NAME, error, units="1"))
    return [r for r in rows if finite(r.value)]


def plot(rows: Sequence[MetricRow], inputs: EvalInputs) -> Figure | None:
    """Per model: bias and RMSE maps of the point forecast; last column: FSS against neighbourhood width."""
    models = list(inputs.predictions)
    if not models:
        return None
    fig = new_figure((4.0 * 3, 3.2 * len(models)))
    axes = fig.subplots(len(models), 3, squeeze=False)
    origin = "upper" if inputs.lat_descending else "lower"  # row 0 is north unless the grid says otherwise
    for i, model in enumerate(models):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            maps = score_maps(inputs.predictions[model].point, inputs.truth)
        bias = maps["bias"]
        limit = float(np.nanmax(np.abs(bias))) if np.isfinite(bias).any() else 1.0
        for ax, (title, image, cmap, vmin) in zip(
            axes[i][:2],
            (
                (f"{model}: bias", bias, "RdBu_r", -limit),
                (f"{model}: RMSE", np.sqrt(maps["mse"]), "magma_r", 0.0),
            ),
            strict=True,
        ):
            shown = ax.imshow(
                image, cmap=cmap, vmin=vmin, vmax=limit if cmap == "RdBu_r" else None, origin=origin
            )
            fig.colorbar(shown, ax=ax, label=inputs.units)
            ax.set_title(title, fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
        fss = [r for r in rows if r.metric == "fss" and r.model == model]
        for threshold in sorted({r.threshold for r in fss if r.threshold is not None}):
            mine = sorted((r for r in fss if r.threshold == threshold), key=lambda r: r.scale or 0)
            axes[i][2].plot(
                [r.scale for r in mine], [r.value for r in mine], marker="o", label=f"> {threshold:.3g}"
            )
        axes[i][2].set(
            title=f"{model}: FSS", xlabel="neighbourhood width (pixels)", ylabel="FSS", ylim=(0, 1)
        )
        if fss:
            axes[i][2].legend(fontsize=7, title=inputs.units, title_fontsize=7)
    return fig


FAMILY = Family(NAME, compute, plot)
compute_and_plot = FAMILY.compute_and_plot
