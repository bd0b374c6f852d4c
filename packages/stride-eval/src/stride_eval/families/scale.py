"""Scale family: radially averaged power spectra of truth and models, and the high-wavenumber error."""

from __future__ import annotations

from stride_contracts import MetricRow
from stride_core.metrics import radial_power_spectrum, spectrum_error
from stride_eval.inputs import EvalInputs

FAMILY = "scale"


def compute(inputs: EvalInputs) -> list[MetricRow]:
    units = f"({inputs.units})2"
    wavenumbers, truth_power = radial_power_spectrum(inputs.truth)
    rows = [
        inputs.row("truth", "psd", FAMILY, p, wavenumber=float(k), units=units)
        for k, p in zip(wavenumbers, truth_power, strict=True)
    ]
    for model, prediction in inputs.predictions.items():
        # Spectra of the members (not of the smooth ensemble mean): the spectrum of what users receive.
        field = prediction.members if prediction.members is not None else prediction.point
        _, power = radial_power_spectrum(field)
        rows += [
            inputs.row(model, "psd", FAMILY, p, wavenumber=float(k), units=units)
            for k, p in zip(wavenumbers, power, strict=True)
        ]
        error = spectrum_error(power, truth_power, high_k_fraction=inputs.high_k_fraction)
        rows.append(inputs.row(model, "spectrum_error", FAMILY, error, units="log10"))
    return rows
