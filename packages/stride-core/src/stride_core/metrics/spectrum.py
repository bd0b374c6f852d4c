"""Radially averaged power spectra of 2-D fields and a high-wavenumber spectrum error."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from stride_core.metrics._checks import normalize_axes


def radial_power_spectrum(
    field: ArrayLike, *, spatial_axes: Sequence[int] = (-2, -1), valid: ArrayLike | None = None
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Radially averaged 2-D power spectrum, averaged over all other axes.

    For each 2-D field f of shape (ny, nx) (spatial_axes, equal pixel spacing assumed):

    1. NaN pixels are filled with the mean of the valid pixels, then that mean is removed, so an
       invalid pixel contributes zero anomaly. A large masked area still imprints its edge on
       the spectrum, as does the field's non-periodicity (no window is applied).
    2. P(kx, ky) = |FFT2(f)|^2 / (ny nx)^2, so the sum over all modes is the field's variance.
    3. kx, ky in cycles per domain are rescaled to cycles per length of the *shorter* side,
       kx * min(ny, nx) / nx and ky * min(ny, nx) / ny, so a non-square grid's bins hold waves of
       the same physical wavelength in both directions.
    4. Each mode goes to the integer bin k = round(sqrt(kx^2 + ky^2)); bins k = 1 .. kmax with
       kmax = min(ny, nx) // 2 (the shorter side's Nyquist) are kept; corner modes beyond kmax
       are dropped.
    5. `power[k-1]` is the mean of P over the modes in bin k (a radial average, not a sum: a field
       with power spread evenly over modes, like white noise, has a flat spectrum).

    Spectra of fields with no valid pixel are left out of the average over the leading axes.

    Compare spectra of truth and model only over the same pixels: pass the truth's validity as
    `valid` for the model's field (or mask it first), else the model keeps power at pixels the truth
    fills with its mean and a perfect prediction scores a spectrum error.

    Args:
        field: array with at least the two spatial axes.
        spatial_axes: the two axes (y, x) of `field` that span one field.
        valid: booleans broadcastable to `field` (True = valid pixel); invalid pixels are treated
            as NaN. None: only NaN pixels are invalid.

    Returns:
        (wavenumbers, power): integer wavenumbers 1..kmax in cycles per shorter side, and the
        power in each bin in field units squared, both of shape (kmax,). Power is NaN when no
        field has a valid pixel.
    """
    values = np.asarray(field, dtype=np.float64)
    if valid is not None:
        mask = np.asarray(valid, dtype=bool)
        try:
            values = np.where(mask, values, np.nan)
        except ValueError:
            raise ValueError(
                f"valid shape {mask.shape} does not broadcast to field shape {values.shape}"
            ) from None
    if values.ndim < 2:
        raise ValueError(f"field needs at least 2 dimensions, got shape {values.shape}")
    axes = normalize_axes(spatial_axes, values.ndim, name="spatial_axes")
    if len(axes) != 2:
        raise ValueError(f"spatial_axes must name exactly two axes, got {tuple(spatial_axes)}")
    values = np.moveaxis(values, axes, (-2, -1))
    ny, nx = values.shape[-2:]
    n_short = min(ny, nx)
    if n_short < 2:
        raise ValueError(
            f"spatial dimensions must be at least 2x2, got {(ny, nx)} from field shape {np.shape(field)}"
        )
    kmax = n_short // 2
    wavenumbers = np.arange(1, kmax + 1, dtype=np.int64)

    fields = values.reshape(math.prod(values.shape[:-2]), ny, nx)
    fields = fields[(~np.isnan(fields)).any(axis=(1, 2))]
    if fields.shape[0] == 0:
        return wavenumbers, np.full(kmax, np.nan)
    anomaly = fields - np.nanmean(fields, axis=(1, 2), keepdims=True)
    anomaly = np.where(np.isnan(anomaly), 0.0, anomaly)
    power_2d = np.mean(np.abs(np.fft.fft2(anomaly)) ** 2, axis=0) / float(ny * nx) ** 2

    ky = np.fft.fftfreq(ny) * n_short
    kx = np.fft.fftfreq(nx) * n_short
    bins = np.floor(np.hypot(ky[:, None], kx[None, :]) + 0.5).astype(np.int64).ravel()
    keep = bins <= kmax
    sums = np.bincount(bins[keep], weights=power_2d.ravel()[keep], minlength=kmax + 1)
    counts = np.bincount(bins[keep], minlength=kmax + 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        power = sums[1:] / counts[1:]
    return wavenumbers, power


def spectrum_error(power_model: ArrayLike, power_truth: ArrayLike, *, high_k_fraction: float = 0.5) -> float:
    """Mean absolute log10 ratio of two spectra over their highest wavenumbers.

        E = mean_{k in K} |log10(P_model(k) / P_truth(k))|

    K is the last ceil(high_k_fraction * n) of the n bins (the upper half by default). Both
    spectra must come from `radial_power_spectrum` on the same grid, so bin i is the same
    wavenumber in both. The fine scales are where generative downscaling differs most from
    interpolation (which loses power there) and from noise (which adds it); a log ratio treats
    too little and too much power alike: E = 1 means one order of magnitude off on average, 0 a
    perfect match. Bins where either power is non-positive or NaN are skipped; NaN if none is
    left.
    """
    model = np.asarray(power_model, dtype=np.float64)
    truth = np.asarray(power_truth, dtype=np.float64)
    if model.ndim != 1 or model.shape != truth.shape:
        raise ValueError(
            f"power_model and power_truth must be 1-D with the same length: power_model shape "
            f"{model.shape}, power_truth shape {truth.shape}"
        )
    if not 0.0 < high_k_fraction <= 1.0:
        raise ValueError(f"high_k_fraction must be in (0, 1], got {high_k_fraction}")
    n_high = math.ceil(high_k_fraction * model.size)
    model, truth = model[model.size - n_high :], truth[truth.size - n_high :]
    usable = (model > 0) & (truth > 0)
    if not usable.any():
        return float("nan")
    return float(np.mean(np.abs(np.log10(model[usable] / truth[usable]))))


def ralsd(power_model: ArrayLike, power_truth: ArrayLike) -> float:
    """Radially averaged log spectral distance in dB (Harris et al. 2022).

        RALSD = sqrt( 1/N sum_k ( 10 log10( P_model(k) / P_truth(k) ) )^2 )

    over the N wavenumber bins of two radially averaged spectra of the same grid (bins where either
    power is non-positive or NaN are skipped; NaN if none is left). Unlike `spectrum_error` it weighs
    every wavenumber and squares the log ratio, so one badly wrong scale dominates: 0 dB is a perfect
    match, 10 dB one order of magnitude off at every scale.

    Reference:
        Harris, L., McRae, A. T. T., Chantry, M., Dueben, P. D. and Palmer, T. N. (2022): A generative
        deep learning approach to stochastic downscaling of precipitation forecasts. J. Adv. Model.
        Earth Syst. 14, e2022MS003120 (section on evaluation metrics: RALSD).
    """
    model = np.asarray(power_model, dtype=np.float64)
    truth = np.asarray(power_truth, dtype=np.float64)
    if model.ndim != 1 or model.shape != truth.shape:
        raise ValueError(
            f"power_model and power_truth must be 1-D with the same length: power_model shape "
            f"{model.shape}, power_truth shape {truth.shape}"
        )
    usable = (model > 0) & (truth > 0)
    if not usable.any():
        return float("nan")
    decibels = 10.0 * np.log10(model[usable] / truth[usable])
    return float(np.sqrt(np.mean(decibels**2)))
