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
from stride_core.metrics import crps_ensemble_fair, radial_power_spectrum, ralsd, spectrum_error
from stride_eval.families.base import Family, finite
from stride_eval.inputs import EvalInputs

NAME = "scale"
MIN_VALID_FRACTION = 0.5
"""A pooled cell is valid where valid pixels carry at least half of its area."""


def pool(field: np.ndarray, factor: int, weights: np.ndarray) -> np.ndarray:
    """Area-weighted block means of the last two axes over the valid pixels."""
    return coarsen_conservative(field, factor, weights, min_valid_fraction=MIN_VALID_FRACTION)


def fields_with_valid_pixels(fields: np.ndarray) -> int:
    """How many 2-D fields (last two axes) have a valid pixel: the weight of their average spectrum."""
    flat = np.asarray(fields).reshape(-1, *np.shape(fields)[-2:])
    return int((~np.isnan(flat)).any(axis=(1, 2)).sum())


class ScaleSums:
    """The scale family's scores as sums over chunks of dates (`update`), turned into rows by `rows`.

    The radially averaged spectrum over dates and members is a mean of per-field spectra, so each chunk
    adds its spectrum times the number of fields behind it; pooling acts date by date, so the pooled CRPS
    and squared error add up. `compute` is one chunk of every date, so both paths run the same code.
    """

    def __init__(self, template: EvalInputs) -> None:
        self.template = template
        self.wavenumbers, self.truth_power = radial_power_spectrum(template.truth)
        height, width = template.truth.shape[-2:]
        self.factors = [
            f
            for f in template.pool_factors
            if height % f == 0 and width % f == 0 and min(height, width) // f >= 2
        ]
        self.power: dict[str, np.ndarray] = {}
        self.fields: dict[str, int] = {}
        self.pooled: dict[tuple[str, str, int], list[float]] = {}
        """(model, metric, factor) -> [sum, count]."""

    def update(self, chunk: EvalInputs) -> None:
        pooled_truth = {f: pool(chunk.truth, f, chunk.weights) for f in self.factors}
        for model, prediction in chunk.predictions.items():
            n = fields_with_valid_pixels(prediction.fields)
            if n:
                _, power = radial_power_spectrum(prediction.fields, valid=~np.isnan(prediction.fields))
                self.power[model] = self.power.get(model, 0.0) + power * n
                self.fields[model] = self.fields.get(model, 0) + n
            for factor in self.factors:
                truth = pooled_truth[factor]
                ensemble = pool(prediction.ensemble, factor, chunk.weights)
                ensemble = np.where(np.isnan(truth)[:, None], np.nan, ensemble)
                crps = crps_ensemble_fair(ensemble, truth, member_axis=1)
                valid = ~np.isnan(truth)
                squared = (ensemble.mean(axis=1, dtype=np.float64) - truth)[valid] ** 2
                for metric, total, count in (
                    ("crps_pooled", float(np.nansum(crps)), int(np.sum(~np.isnan(crps)))),
                    ("rmse_mean_pooled", float(np.sum(squared)), int(squared.size)),
                ):
                    sums = self.pooled.setdefault((model, metric, factor), [0.0, 0])
                    sums[0] += total
                    sums[1] += count

    def rows(self) -> list[MetricRow]:
        inputs = self.template
        units = f"({inputs.units})2"
        rows = [
            inputs.row("truth", "psd", NAME, p, wavenumber=float(k), units=units)
            for k, p in zip(self.wavenumbers, self.truth_power, strict=True)
            if np.isfinite(p)
        ]
        models = list(dict.fromkeys([*self.power, *(key[0] for key in self.pooled)]))
        for model in models:
            if model in self.power:
                power = self.power[model] / self.fields[model]
                rows += [
                    inputs.row(model, "psd", NAME, p, wavenumber=float(k), units=units)
                    for k, p in zip(self.wavenumbers, power, strict=True)
                    if np.isfinite(p)
                ]
                error = spectrum_error(power, self.truth_power, high_k_fraction=inputs.high_k_fraction)
                if finite(error):
                    rows.append(inputs.row(model, "spectrum_error", NAME, error, units="log10"))
                distance = ralsd(power, self.truth_power)
                if finite(distance):
                    rows.append(inputs.row(model, "ralsd", NAME, distance, units="dB"))
            for factor in self.factors:
                # Own names: readers that take rows without date and wavenumber as headline keep the
                # unpooled crps.
                for metric in ("crps_pooled", "rmse_mean_pooled"):
                    total, count = self.pooled.get((model, metric, factor), [0.0, 0])
                    value = float("nan") if not count else total / count
                    value = float(np.sqrt(value)) if metric == "rmse_mean_pooled" else value
                    if finite(value):
                        rows.append(inputs.row(model, metric, NAME, value, scale=float(factor)))
        return rows


def compute(inputs: EvalInputs) -> list[MetricRow]:
    sums = ScaleSums(inputs)
    sums.update(inputs)
    return sums.rows()


def plot(rows: Sequence[MetricRow], inputs: EvalInputs) -> Figure | None:
    """Power spectra (left) and CRPS against the pooling factor (right)."""
    psd = [r for r in rows if r.metric == "psd"]
    if not psd:
        return None
    fig = new_figure((11.0, 4.0))
    left, right = fig.subplots(1, 2)
    colours = inputs.colours(r.model for r in rows)
    for model in sorted({r.model for r in psd}):
        mine = [r for r in psd if r.model == model]
        left.loglog(
            [r.wavenumber for r in mine],
            [r.value for r in mine],
            label=model,
            color=colours[model],
        )
    left.set(
        title=f"{inputs.title}: radially averaged power spectrum",
        xlabel="wavenumber (cycles per shorter side)",
        ylabel=f"power ({inputs.units})²",
    )
    left.legend(fontsize=8)
    pooled_crps = [r for r in rows if r.metric == "crps_pooled"]
    for model in sorted({r.model for r in pooled_crps}):
        mine = sorted((r for r in pooled_crps if r.model == model), key=lambda r: r.scale or 0)
        right.plot(
            [r.scale for r in mine], [r.value for r in mine], marker="o", label=model, color=colours[model]
        )
    right.set(
        title=f"{inputs.title}: CRPS after average pooling",
        xlabel="pooling factor",
        ylabel=f"CRPS ({inputs.units})",
    )
    right.set_xscale("log", base=2)
    if pooled_crps:
        right.legend(fontsize=8)
    return fig


FAMILY = Family(NAME, compute, plot)
compute_and_plot = FAMILY.compute_and_plot
