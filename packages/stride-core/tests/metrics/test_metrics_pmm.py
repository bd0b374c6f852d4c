"""Tests for the probability-matched mean."""

from __future__ import annotations

import numpy as np
import pytest

from stride_core.metrics import probability_matched_mean


def test_keeps_mean_ranks_and_pooled_quantiles() -> None:
    rng = np.random.default_rng(0)
    ensemble = rng.gamma(0.7, 2.0, size=(6, 20, 30))  # skewed like precipitation
    pmm = probability_matched_mean(ensemble)
    assert pmm.shape == (20, 30)

    mean = ensemble.mean(axis=0)
    np.testing.assert_array_equal(np.argsort(pmm, axis=None), np.argsort(mean, axis=None))

    pooled = np.sort(ensemble, axis=None)
    np.testing.assert_allclose(np.sort(pmm, axis=None), pooled.reshape(-1, 6).mean(axis=1))
    q = np.linspace(0.02, 0.98, 25)
    np.testing.assert_allclose(np.quantile(pmm, q), np.quantile(pooled, q), rtol=0.05, atol=0.02)
    assert pmm.mean() == pytest.approx(ensemble.mean())
    # The point of PMM: more amplitude than the ensemble mean.
    assert pmm.std() > 1.5 * mean.std()


def test_axes_layout_and_dtype() -> None:
    rng = np.random.default_rng(1)
    ensemble = rng.normal(size=(3, 4, 5, 6, 7)).astype(np.float32)  # [t, m, v, y, x]
    pmm = probability_matched_mean(ensemble, member_axis=1)
    assert pmm.shape == (3, 5, 6, 7)
    assert pmm.dtype == np.float32
    for t in range(3):
        for v in range(5):
            np.testing.assert_allclose(pmm[t, v], probability_matched_mean(ensemble[t, :, v]), rtol=1e-6)

    # Members last, spatial axes first: [y, x, t, m].
    moved = np.moveaxis(ensemble[:, :, 0], (0, 1), (2, 3))
    pmm_moved = probability_matched_mean(moved, member_axis=-1, spatial_axes=(0, 1))
    assert pmm_moved.shape == (6, 7, 3)
    np.testing.assert_allclose(pmm_moved, np.moveaxis(pmm[:, 0], 0, -1), rtol=1e-6)


def test_nan_pixels_stay_nan_and_are_not_pooled() -> None:
    rng = np.random.default_rng(2)
    ensemble = rng.normal(size=(4, 8, 9))
    ensemble[:, 0, :3] = np.nan
    ensemble[2, 5, 5] = np.nan  # one member missing makes the mean NaN there too
    ensemble[:, 7, 8] = 1e6  # would dominate if NaN pixels shifted the pooling
    pmm = probability_matched_mean(ensemble)
    invalid = np.isnan(ensemble.mean(axis=0))
    np.testing.assert_array_equal(np.isnan(pmm), invalid)
    pooled = np.sort(ensemble[:, ~invalid], axis=None)
    np.testing.assert_allclose(np.sort(pmm[~invalid]), pooled.reshape(-1, 4).mean(axis=1))
    assert pmm[7, 8] == pytest.approx(1e6)


def test_nan_in_one_field_does_not_touch_the_others() -> None:
    rng = np.random.default_rng(3)
    ensemble = rng.normal(size=(5, 2, 6, 6))  # [m, t, y, x]
    clean = probability_matched_mean(ensemble[:, 1])
    ensemble[:, 0, 2, 2] = np.nan
    pmm = probability_matched_mean(ensemble)
    np.testing.assert_allclose(pmm[1], clean)
    assert np.isnan(pmm[0, 2, 2]) and np.isnan(pmm[0]).sum() == 1


def test_single_member_is_returned_unchanged() -> None:
    member = np.random.default_rng(4).normal(size=(1, 5, 5))
    np.testing.assert_allclose(probability_matched_mean(member), member[0])


def test_rejects_member_axis_among_spatial_axes() -> None:
    with pytest.raises(ValueError, match="must not contain member_axis"):
        probability_matched_mean(np.zeros((3, 4, 5)), member_axis=-1)


def test_valid_mask_keeps_unsupervised_pixels_out_of_the_pool() -> None:
    rng = np.random.default_rng(7)
    members = rng.normal(size=(3, 5, 8))
    valid = np.ones((5, 8), dtype=bool)
    valid[:, :3] = False
    expected = probability_matched_mean(members[:, :, 3:], member_axis=0)
    members[0, :, :3], members[1:, :, :3] = 1e9, -1e9
    assert np.max(probability_matched_mean(members, member_axis=0)[:, 3:]) == 1e9  # without the mask
    got = probability_matched_mean(members, member_axis=0, valid=valid)
    assert np.isnan(got[:, :3]).all()
    np.testing.assert_allclose(got[:, 3:], expected)
    with pytest.raises(ValueError, match="does not broadcast"):
        probability_matched_mean(members, member_axis=0, valid=np.ones((4, 8), dtype=bool))
