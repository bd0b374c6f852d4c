"""Scale family: power spectra, the high-wavenumber error, RALSD, and scores after average pooling.

Spectra are of the members (not of the smooth ensemble mean): the spectrum of what users receive.
Predictions are masked like the truth (`masked_inputs`), so both spectra cover the same pixels.
Average pooling by 2x, 4x, 8x (block means over the valid pixels, area-weighted) shows at which scale a
model becomes skilful: `crps_pooled` and `rmse_mean_pooled` (CRPS and RMSE of the ensemble mean after
pooling) carry the pooling factor in `scale`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from stride_contracts import MetricRow
from stride_core.grid import coarsen_conservative
from stride_core.maps import new_figure
from stride_core.metrics import crps_ensemble_fair, radial_power_spectrum, ralsd, rmse, spectrum_error
from stride_eval.families.base import Family, finite
from stride_eval.inputs import EvalInputs

NAME = "scale"
MIN_VALID_FRACTION = 0.5
"""A pooled cell is valid where valid pixels carry at least half of its area."""


def pool(field: np.ndarray, factor: int, weights: np.ndarray) -> np.ndarray:
    """Area-weighted block means of the last two axes over the valid pixels."""
    return coarsen_conservative(field, factor, weights, min_valid_fraction=MIN_VALID_FRACTION)


def compute(inputs: EvalInputs) -> list[MetricRow]:
    units = f"({inputs.units})2"
    wavenumbers, truth_power = radial_power_spectrum(inputs.truth)
    rows = [
        inputs.row("truth", "psd", NAME, p, wavenumber=float(k), units=units)
        for k, p in zip(wavenumbers, truth_power, strict=True)
        if np.isfinite(p)
    ]
    height, width = inputs.truth.shape[-2:]
    factors = [
        f for f in inputs.pool_factors if height % f == 0 and width % f == 0 and min(height, width) // f >= 2
    ]
    pooled_truth = {f: pool(inputs.truth, f, inputs.weights) for f in factors}
    for model, prediction in inputs.predictions.items():
        _, power = radial_power_spectrum(prediction.fields, valid=~np.isnan(prediction.fields))
        rows += [
            inputs.row(model, "psd", NAME, p, wavenumber=float(k), units=units)
            for k, p in zip(wavenumbers, power, strict=True)
            if np.isfinite(p)
        ]
        error = spectrum_error(power, truth_power, high_k_fraction=inputs.high_k_fraction)
        if finite(error):
            rows.append(inputs.row(model, "spectrum_error", NAME, error, units="log10"))
        distance = ralsd(power, truth_power)
        if finite(distance):
            rows.append(inputs.row(model, "ralsd", NAME, distance, units="dB"))
        for factor in factors:
            truth = pooled_truth[factor]
            ensemble = pool(prediction.ensemble, factor, inputs.weights)
            ensemble = np.where(np.isnan(truth)[:, None], np.nan, ensemble)
            crps = float(np.nanmean(crps_ensemble_fair(ensemble, truth, member_axis=1)))
            error_mean = float(rmse(ensemble.mean(axis=1), truth))
            # Own names: readers that take rows without date and wavenumber as headline keep the unpooled crps.
            for metric, value in (("crps_pooled", crps), ("rmse_mean_pooled", error_mean)):
                if finite(value):
                    rows.append(inputs.row(model, metric, NAME, value, scale=float(factor)))
    return rows


def plot(rows: Sequence[MetricRow], inputs: EvalInputs) -> Figure | None:
    """Power spectra (left) and CRPS against the pooling factor (right)."""
    psd = [r for r in rows if r.metric == "psd"]
    if not psd:
        return None
    fig = new_figure((11.0, 4.0))
    left, right = fig.subplots(1, 2)
    for model in sorted({r.model for r in psd}):
        mine = [r for r in psd if r.model == model]
        left.loglog(
            [r.wavenumber for r in mine],
            [r.value for r in mine],
            label=model,
            color="black" if model == "truth" else None,
        )
    left.set(
        title=f"{inputs.variable}: radially averaged power spectrum",
        xlabel="wavenumber (cycles per shorter side)",
        ylabel=f"power ({inputs.units})²",
    )
    left.legend(fontsize=8)
    pooled_crps = [r for r in rows if r.metric == "crps_pooled"]
    for model in sorted({r.model for r in pooled_crps}):
        mine = sorted((r for r in pooled_crps if r.model == model), key=lambda r: r.scale or 0)
        right.plot([r.scale for r in mine], [r.value for r in mine], marker="o", label=model)
    right.set(
        title=f"{inputs.variable}: CRPS after average pooling",
        xlabel="pooling factor",
        ylabel=f"CRPS ({inputs.units})",
    )
    right.set_xscale("log", base=2)
    if pooled_crps:
        right.legend(fontsize=8)
    return fig


FAMILY = Family(NAME, compute, plot)
compute_and_plot = FAMILY.compute_and_plot
