"""The metric kernels against independent references: properscoring, scores, scipy and hand-worked cases.

properscoring (CRPS), `scores` (fair CRPS, rank histogram with ties, fair Brier, FSS) and scipy
(Wasserstein-1) are test dependencies of stride-eval only: the kernels themselves are numpy, vectorised
over dates and members, and run on masked fields; these libraries pin down that they compute the
published definitions.
"""

from __future__ import annotations

import operator

import numpy as np
import properscoring
import pytest
import scipy.stats
import xarray as xr
from scores.probability import (
    brier_score_for_ensemble,
    crps_for_ensemble,
)
from scores.probability import (
    rank_histogram as scores_rank_histogram,
)
from scores.spatial import fss_2d

from stride_core.metrics import (
    bilinear_upsample,
    brier_score_fair,
    crps_ensemble_fair,
    dry_spell_lengths,
    fractions_skill_score,
    fss_sums,
    perkins_skill_score,
    radial_power_spectrum,
    ralsd,
    rank_histogram,
    rank_histogram_flatness,
    reliability_curve,
    wasserstein_1,
)


def ensemble_case(seed: int = 0, m: int = 7) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    truth = rng.normal(size=(40, 9))
    members = truth[None] + rng.normal(scale=1.3, size=(m, 40, 9))
    return members, truth


def test_fair_crps_matches_properscoring_with_the_fair_correction() -> None:
    members, truth = ensemble_case()
    m = members.shape[0]
    ours = crps_ensemble_fair(members, truth, member_axis=0)
    # properscoring averages the spread over all m^2 pairs; the fair score over the m(m-1) distinct ones:
    # CRPS_fair = m / (m - 1) CRPS_ps - 1 / (m - 1) mean_i |x_i - y|.
    reference = properscoring.crps_ensemble(truth, np.moveaxis(members, 0, -1))
    skill = np.mean(np.abs(members - truth), axis=0)
    np.testing.assert_allclose(ours, m / (m - 1) * reference - skill / (m - 1), rtol=1e-10)


def test_fair_crps_matches_scores_fair_method() -> None:
    members, truth = ensemble_case(1, m=5)
    fcst = xr.DataArray(members, dims=("member", "t", "p"))
    obs = xr.DataArray(truth, dims=("t", "p"))
    reference = crps_for_ensemble(fcst, obs, "member", method="fair", preserve_dims=["t", "p"])
    np.testing.assert_allclose(
        crps_ensemble_fair(members, truth, member_axis=0), reference.values, rtol=1e-10
    )


def test_rank_histogram_matches_scores_including_ties() -> None:
    rng = np.random.default_rng(2)
    # Precipitation-like: many exact zeros in truth and members, so ties are common.
    members = np.maximum(rng.normal(size=(4, 300)), 0).round(1)
    truth = np.maximum(rng.normal(size=300), 0).round(1)
    ours = rank_histogram(members, truth, member_axis=0)
    reference = scores_rank_histogram(
        xr.DataArray(members, dims=("member", "p")), xr.DataArray(truth, dims=("p",)), "member"
    )
    np.testing.assert_allclose(ours, reference.values, rtol=1e-12)


def test_rank_flatness_by_hand() -> None:
    # 3 ranks, 30 points: counts 20, 5, 5 against 10 expected -> (100 + 25 + 25) / (30 * 2 / 3) = 7.5.
    assert rank_histogram_flatness(np.array([20, 5, 5]) / 30, 30) == pytest.approx(7.5)
    assert rank_histogram_flatness(np.array([1, 1, 1]) / 3, 30) == 0


def test_fair_brier_matches_scores() -> None:
    members, truth = ensemble_case(3, m=6)
    fcst = xr.DataArray(members, dims=("member", "t", "p"))
    obs = xr.DataArray(truth, dims=("t", "p"))
    for threshold in (-0.5, 0.0, 1.0):
        reference = brier_score_for_ensemble(
            fcst,
            obs,
            "member",
            threshold,
            fair_correction=True,
            event_threshold_operator=operator.gt,
            preserve_dims=["t", "p"],
        )
        ours = brier_score_fair(members, truth, member_axis=0, threshold=threshold)
        np.testing.assert_allclose(ours, np.squeeze(reference.values), rtol=1e-10, atol=1e-12)


def test_reliability_by_hand() -> None:
    probability = np.array([0.05, 0.05, 0.15, 0.95, 1.0, np.nan])
    event = np.array([0, 1, 0, 1, 1, 1])
    mean_p, observed, counts = reliability_curve(probability, event, n_bins=10)
    assert counts.tolist() == [2, 1, 0, 0, 0, 0, 0, 0, 0, 2]
    assert mean_p[0] == pytest.approx(0.05) and observed[0] == pytest.approx(0.5)
    assert observed[1] == 0 and np.isnan(observed[2])
    assert mean_p[9] == pytest.approx(0.975) and observed[9] == 1


def test_fss_by_hand() -> None:
    # 3 x 3 fields, one 3 x 3 window. Forecast: 2 event pixels, truth: 1 -> P_f = 2/9, P_o = 1/9.
    forecast = np.zeros((3, 3))
    forecast[0, 0] = forecast[2, 2] = 5.0
    truth = np.zeros((3, 3))
    truth[1, 1] = 5.0
    expected = 1 - (2 / 9 - 1 / 9) ** 2 / ((2 / 9) ** 2 + (1 / 9) ** 2)  # = 1 - 1/5 = 0.8
    assert fractions_skill_score(forecast, truth, threshold=1.0, size=3) == pytest.approx(expected)
    assert expected == pytest.approx(0.8)
    # At the pixel scale the events never overlap: FSS = 1 - (2 + 1) / (2 + 1) = 0.
    assert fractions_skill_score(forecast, truth, threshold=1.0, size=1) == pytest.approx(0.0)


@pytest.mark.filterwarnings("ignore:At least one of the provided spatial dims")
def test_fss_matches_scores_over_several_fields() -> None:
    rng = np.random.default_rng(4)
    forecast = rng.gamma(0.5, 2.0, size=(3, 20, 24))
    truth = rng.gamma(0.5, 2.0, size=(3, 20, 24))
    for size in (1, 3, 7):
        reference = fss_2d(
            xr.DataArray(forecast, dims=("t", "y", "x")),
            xr.DataArray(truth, dims=("t", "y", "x")),
            event_threshold=1.0,
            window_size=(size, size),
            spatial_dims=("y", "x"),
            reduce_dims=["t"],
        )
        ours = fractions_skill_score(forecast, truth, threshold=1.0, size=size)
        assert ours == pytest.approx(float(reference), rel=1e-10)


@pytest.mark.filterwarnings("ignore:At least one of the provided spatial dims")
def test_fss_sums_of_an_ensemble_match_scores_at_every_threshold_and_size() -> None:
    # The spatial family's path: members [time, member, y, x] against one truth, NaN truth masked.
    rng = np.random.default_rng(5)
    truth = rng.gamma(0.5, 2.0, size=(4, 20, 24)).astype(np.float32)
    truth[:, :3] = np.nan
    members = rng.gamma(0.5, 2.0, size=(4, 3, 20, 24)).astype(np.float32)
    members = np.where(np.isnan(truth)[:, None], np.nan, members)
    thresholds, sizes = (0.5, 1.0, 3.0), (1, 3, 7, 20)
    sums = fss_sums(members, truth, thresholds=thresholds, sizes=sizes, member_axis=1)
    observed = xr.DataArray(np.broadcast_to(truth[:, None], members.shape), dims=("t", "m", "y", "x"))
    for threshold in thresholds:
        for size in sizes:
            reference = fss_2d(
                xr.DataArray(np.nan_to_num(members, nan=0.0), dims=("t", "m", "y", "x")),
                observed.fillna(0.0),
                event_threshold=threshold,
                window_size=(size, size),
                spatial_dims=("y", "x"),
                reduce_dims=["t", "m"],
            )
            numerator, denominator = sums[(threshold, size)]
            assert 1 - numerator / denominator == pytest.approx(float(reference), rel=1e-9)


def test_ralsd_of_fields_with_known_spectra() -> None:
    # Doubling a field quadruples its power at every wavenumber: RALSD = 10 log10(4) dB exactly.
    noise = np.random.default_rng(5).normal(size=(4, 64, 64))
    _, power = radial_power_spectrum(noise)
    _, doubled = radial_power_spectrum(2 * noise)
    assert ralsd(doubled, power) == pytest.approx(10 * np.log10(4), rel=1e-12)
    assert ralsd(power, power) == 0
    # A plane wave of k = 5 cycles: all power in bin 5; a spectrum off by 10x in one of N bins gives
    # sqrt(100 / N) dB.
    model = power.copy()
    model[4] *= 10
    assert ralsd(model, power) == pytest.approx(np.sqrt(100 / power.size))


def test_wasserstein_matches_scipy() -> None:
    rng = np.random.default_rng(6)
    a = rng.gamma(0.7, 1.5, size=1000)
    b = rng.normal(1.0, 2.0, size=1234)
    assert wasserstein_1(a, b) == pytest.approx(scipy.stats.wasserstein_distance(a, b), rel=1e-10)
    with_nan = np.concatenate([a, [np.nan]])
    assert wasserstein_1(with_nan, b) == pytest.approx(scipy.stats.wasserstein_distance(a, b), rel=1e-10)


def test_perkins_by_hand() -> None:
    edges = np.array([0.0, 1.0, 2.0, 3.0])
    model = np.array([0.5, 0.5, 1.5, 2.5])  # shares 0.5, 0.25, 0.25
    truth = np.array([0.5, 1.5, 1.5, 1.5])  # shares 0.25, 0.75, 0
    assert perkins_skill_score(model, truth, edges=edges) == pytest.approx(0.25 + 0.25 + 0)
    assert perkins_skill_score(truth, truth, edges=edges) == pytest.approx(1)


def test_dry_spells_by_hand() -> None:
    series = np.array([[0, 1], [0, 0], [2, 0], [0, np.nan], [0, 0]], dtype=float)  # [time, pixel]
    # Pixel 0: dry 2, wet, dry 2. Pixel 1: wet, dry 2, NaN (ends it), dry 1.
    assert sorted(dry_spell_lengths(series, threshold=0.1, axis=0).tolist()) == [1, 2, 2, 2]


def test_bilinear_is_exact_on_a_ramp_between_the_outer_pixel_centres() -> None:
    ramp = np.add.outer(np.arange(6.0), 2 * np.arange(5.0))
    up = bilinear_upsample(ramp, 4)
    centres_y = (np.arange(24) + 0.5) / 4 - 0.5
    centres_x = (np.arange(20) + 0.5) / 4 - 0.5
    expected = np.add.outer(np.clip(centres_y, 0, 5), 2 * np.clip(centres_x, 0, 4))
    np.testing.assert_allclose(up, expected, atol=1e-12)
