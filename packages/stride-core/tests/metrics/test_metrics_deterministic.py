"""Tests for RMSE, MAE and bias."""

from __future__ import annotations

import numpy as np
import pytest

from stride_core.metrics import bias, mae, rmse


def test_known_values() -> None:
    prediction = np.array([1.0, 2.0, 3.0, 4.0])
    truth = np.array([0.0, 2.0, 5.0, 4.0])
    assert rmse(prediction, truth) == pytest.approx(np.sqrt(5 / 4))
    assert mae(prediction, truth) == pytest.approx(3 / 4)
    assert bias(prediction, truth) == pytest.approx(-1 / 4)
    assert isinstance(rmse(prediction, truth), float)


def test_nan_truth_is_excluded() -> None:
    prediction = np.array([[1.0, 100.0], [3.0, 5.0]])
    truth = np.array([[0.0, np.nan], [3.0, 4.0]])
    assert mae(prediction, truth) == pytest.approx(2 / 3)
    assert bias(prediction, truth) == pytest.approx(2 / 3)
    assert rmse(prediction, truth) == pytest.approx(np.sqrt(2 / 3))


def test_axis_reduces_per_row_and_all_invalid_row_is_nan() -> None:
    prediction = np.array([[1.0, 3.0], [2.0, 2.0]])
    truth = np.array([[0.0, 0.0], [np.nan, np.nan]])
    per_row = mae(prediction, truth, axis=1)
    assert isinstance(per_row, np.ndarray)
    np.testing.assert_allclose(per_row[0], 2.0)
    assert np.isnan(per_row[1])
    np.testing.assert_allclose(bias(prediction, truth, axis=(-1,)), per_row)


def test_nan_prediction_at_valid_point_propagates() -> None:
    assert np.isnan(rmse(np.array([np.nan, 1.0]), np.array([0.0, 1.0])))


def test_broadcasting_and_shape_error() -> None:
    truth = np.arange(6.0).reshape(2, 3)
    assert bias(np.zeros(3), truth) == pytest.approx(-2.5)
    with pytest.raises(ValueError, match=r"\(4,\).*\(2, 3\)"):
        rmse(np.zeros(4), truth)
