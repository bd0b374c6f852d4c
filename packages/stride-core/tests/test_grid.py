import numpy as np
import pytest

from stride_core.errors import InputDataError
from stride_core.grid import coarsen_conservative, coarsen_coordinate, latitude_area_weights


def test_area_weighted_block_mean() -> None:
    lat = np.array([60.0, 0.0])
    weights = np.broadcast_to(latitude_area_weights(lat)[:, None], (2, 2))
    field = np.array([[1.0, 1.0], [3.0, 3.0]])
    expected = (0.5 * 1 * 2 + 1.0 * 3 * 2) / (0.5 * 2 + 1.0 * 2)
    assert coarsen_conservative(field, 2, weights)[0, 0] == pytest.approx(expected, rel=1e-6)


def test_conserves_the_area_weighted_mean_and_keeps_constants() -> None:
    rng = np.random.default_rng(0)
    lat = np.linspace(58, 50, 8)
    weights = np.broadcast_to(latitude_area_weights(lat)[:, None], (8, 12))
    field = rng.normal(size=(3, 8, 12))
    coarse = coarsen_conservative(field, 4, weights)
    coarse_weights = coarsen_conservative(weights, 4, np.ones_like(weights)) * 16
    fine_mean = (field * weights).sum(axis=(1, 2)) / weights.sum()
    coarse_mean = (coarse * coarse_weights).sum(axis=(1, 2)) / coarse_weights.sum()
    np.testing.assert_allclose(coarse_mean, fine_mean, rtol=1e-5)
    np.testing.assert_allclose(coarsen_conservative(np.full((8, 12), 7.0), 4, weights), 7.0)


def test_nan_aware_valid_fraction() -> None:
    field = np.ones((2, 2))
    field[0, :] = np.nan
    weights = np.ones((2, 2))
    assert coarsen_conservative(field, 2, weights, min_valid_fraction=0.5)[0, 0] == 1.0
    assert np.isnan(coarsen_conservative(field, 2, weights, min_valid_fraction=0.75)[0, 0])


def test_factor_must_divide() -> None:
    with pytest.raises(InputDataError, match="not divisible by coarsening factor 4"):
        coarsen_conservative(np.zeros((6, 8)), 4, np.ones((6, 8)))
    np.testing.assert_allclose(coarsen_coordinate(np.array([1.0, 2.0, 3.0, 4.0]), 2), [1.5, 3.5])
