"""Tests for the radial power spectrum and the spectrum error."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from stride_core.metrics import radial_power_spectrum, spectrum_error


def plane_wave(ny: int, nx: int, cycles_y: int, cycles_x: int) -> np.ndarray:
    y, x = np.meshgrid(np.arange(ny), np.arange(nx), indexing="ij")
    return np.cos(2 * np.pi * (cycles_y * y / ny + cycles_x * x / nx)) + 3.0


@pytest.mark.parametrize(
    ("ny", "nx", "cycles_y", "cycles_x", "k"),
    [(64, 64, 3, 4, 5), (64, 64, 0, 12, 12), (32, 64, 0, 10, 5), (32, 64, 5, 0, 5), (48, 32, 9, 0, 6)],
)
def test_plane_wave_power_lands_in_its_bin(ny: int, nx: int, cycles_y: int, cycles_x: int, k: int) -> None:
    wavenumbers, power = radial_power_spectrum(plane_wave(ny, nx, cycles_y, cycles_x))
    assert wavenumbers[0] == 1 and wavenumbers[-1] == min(ny, nx) // 2
    assert wavenumbers[np.argmax(power)] == k
    assert power[k - 1] > 1e6 * np.delete(power, k - 1).max()


def test_bin_power_times_mode_count_is_the_variance() -> None:
    # A unit cosine has variance 1/2, all of it in bin 8; the bin holds a radial average over modes.
    k = np.fft.fftfreq(64) * 64
    modes_per_bin = np.bincount(np.floor(np.hypot(k[:, None], k[None, :]) + 0.5).astype(int).ravel())
    _, power = radial_power_spectrum(plane_wave(64, 64, 0, 8))
    assert power[7] * modes_per_bin[8] == pytest.approx(0.5)


def test_white_noise_is_flat() -> None:
    rng = np.random.default_rng(0)
    _, power = radial_power_spectrum(rng.normal(scale=2.0, size=(40, 64, 64)))
    # White noise of variance s^2 has s^2 / N per mode.
    np.testing.assert_allclose(power[2:], 4.0 / 64**2, rtol=0.25)
    slope = np.polyfit(np.log10(np.arange(3, 33)), np.log10(power[2:]), 1)[0]
    assert abs(slope) < 0.05


def test_spatial_axes_and_leading_average() -> None:
    rng = np.random.default_rng(1)
    fields = rng.normal(size=(3, 16, 20))
    _, stacked = radial_power_spectrum(fields)
    single = [radial_power_spectrum(f)[1] for f in fields]
    np.testing.assert_allclose(stacked, np.mean(single, axis=0))
    _, moved = radial_power_spectrum(np.moveaxis(fields, 0, -1), spatial_axes=(0, 1))
    np.testing.assert_allclose(moved, stacked)


def test_nan_is_filled_with_the_mean_and_all_nan_fields_are_skipped() -> None:
    field = plane_wave(32, 32, 0, 4)
    with_nan = field.copy()
    with_nan[:2, :2] = np.nan
    _, power = radial_power_spectrum(with_nan)
    assert np.isfinite(power).all()
    assert np.argmax(power) == 3
    _, both = radial_power_spectrum(np.stack([field, np.full_like(field, np.nan)]))
    np.testing.assert_allclose(both, radial_power_spectrum(field)[1])
    _, none = radial_power_spectrum(np.full((8, 8), np.nan))
    assert np.isnan(none).all()


def test_smoothing_loses_high_k_power_and_raises_the_error() -> None:
    rng = np.random.default_rng(2)
    truth = gaussian_filter(rng.normal(size=(8, 64, 64)), sigma=(0, 1, 1))
    _, power_truth = radial_power_spectrum(truth)
    assert spectrum_error(power_truth, power_truth) == 0.0
    errors = []
    for sigma in (0.5, 1.5, 3.0):
        _, power = radial_power_spectrum(gaussian_filter(truth, sigma=(0, sigma, sigma)))
        assert power[-1] < power_truth[-1]
        errors.append(spectrum_error(power, power_truth))
    assert errors[0] < errors[1] < errors[2]


def test_spectrum_error_definition() -> None:
    truth = np.ones(10)
    model = np.array([1.0] * 5 + [10.0, 0.1, 1.0, 1.0, 100.0])
    assert spectrum_error(model, truth) == pytest.approx((1 + 1 + 0 + 0 + 2) / 5)
    assert spectrum_error(model, truth, high_k_fraction=0.1) == pytest.approx(2.0)
    assert spectrum_error(model, truth, high_k_fraction=1.0) == pytest.approx(4 / 10)
    with pytest.raises(ValueError, match=r"\(10,\).*\(9,\)"):
        spectrum_error(model, truth[:9])
    with pytest.raises(ValueError, match="high_k_fraction"):
        spectrum_error(model, truth, high_k_fraction=0.0)
