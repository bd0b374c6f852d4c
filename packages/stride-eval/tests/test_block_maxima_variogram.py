"""Block maxima (extremes family) against pandas' grouped maxima, the semivariogram (spatial family) against
fields of known variogram."""

from __future__ import annotations

import cftime
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from stride_core.calendars import time_index
from stride_core.metrics import block_maxima, semivariogram
from stride_eval.families import REGISTRY
from stride_eval.inputs import EvalInputs, Prediction


def test_block_maxima_match_pandas_groupby() -> None:
    rng = np.random.default_rng(0)
    times = pd.date_range("2019-01-01", "2020-12-31", freq="D")
    values = rng.gamma(2.0, size=(times.size, 3, 4))
    values[5, 1, 2] = np.nan
    maxima, names = block_maxima(values, times.year.to_numpy())
    reference = pd.DataFrame(values.reshape(times.size, -1), index=times).groupby(times.year).max()
    assert list(names) == [2019, 2020]
    np.testing.assert_array_equal(maxima.reshape(2, -1), reference.to_numpy())


def inputs_for(
    times: pd.DatetimeIndex | xr.CFTimeIndex, truth: np.ndarray, members: np.ndarray
) -> EvalInputs:
    return EvalInputs(
        variable="t2m",
        units="K",
        times=times,
        truth=truth.astype(np.float32),
        predictions={
            "stride": Prediction(point=members.mean(axis=1), members=members.astype(np.float32)),
            "copy": Prediction(point=truth.astype(np.float32)),
        },
    )


def extremes_rows(inputs: EvalInputs) -> dict[tuple[str, str, str | None], float]:
    return {(r.model, r.metric, r.date): r.value for r in REGISTRY["extremes"](inputs)}


def test_annual_maxima_rows_when_two_years_and_monthly_otherwise() -> None:
    rng = np.random.default_rng(1)
    times = pd.date_range("2019-01-01", "2020-12-31", freq="D")
    truth = 280 + rng.normal(size=(times.size, 4, 4))
    members = truth[:, None] + 2.0 + rng.normal(scale=0.1, size=(times.size, 3, 4, 4))
    rows = extremes_rows(inputs_for(times, truth, members))
    by_year = pd.DataFrame(truth.reshape(times.size, -1), index=times).groupby(times.year).max()
    expected = by_year.to_numpy(dtype=np.float32).astype(np.float64)
    assert rows[("truth", "annual_max", "2019")] == pytest.approx(expected[0].mean(), rel=1e-6)
    assert rows[("truth", "annual_max", None)] == pytest.approx(expected.mean(), rel=1e-6)
    assert rows[("copy", "annual_max_rel_error", None)] == pytest.approx(0.0, abs=1e-9)
    # Members 2 K too warm (noise 0.1 K): the maxima too, by about 2 K over ~283 K.
    assert rows[("stride", "annual_max_rel_error", None)] == pytest.approx(2.0 / expected.mean(), rel=0.1)
    # Three months and a few days: the monthly maxima of the full months only.
    short = pd.date_range("2019-01-01", "2019-04-03", freq="D")
    rows = extremes_rows(inputs_for(short, truth[: short.size], members[: short.size]))
    assert {d for (m, metric, d) in rows if m == "truth" and metric == "monthly_max"} == {
        None,
        "2019-01",
        "2019-02",
        "2019-03",
    }
    assert not any(metric.startswith("annual") for (_, metric, _) in rows)


def test_block_maxima_on_a_360_day_calendar() -> None:
    times = time_index(
        xr.DataArray(
            [cftime.Datetime360Day(2001 + i // 360, 1 + (i % 360) // 30, 1 + i % 30) for i in range(720)],
            dims="time",
        )
    )
    truth = np.arange(720, dtype=np.float64)[:, None, None] * np.ones((1, 2, 2))
    rows = extremes_rows(inputs_for(times, truth, truth[:, None]))
    assert rows[("truth", "annual_max", "2001")] == 359 and rows[("truth", "annual_max", "2002")] == 719


def test_semivariogram_of_a_ramp_and_of_white_noise() -> None:
    # z = a x + b y: differences h apart are a h along x and b h along y, equal pair counts on a square grid.
    a, b = 0.5, -2.0
    y, x = np.mgrid[0:32, 0:32]
    ramp = (a * x + b * y)[None].astype(np.float64)
    lags = (1, 3, 10)
    expected = [(a**2 + b**2) * h**2 / 4 for h in lags]
    np.testing.assert_allclose(semivariogram(ramp, lags), expected, rtol=1e-12)
    # Independent pixels of variance 4: gamma(h) = 4 at every lag; NaN pixels leave their pairs out.
    noise = np.random.default_rng(2).normal(scale=2.0, size=(20, 64, 64))
    noise[:, :10] = np.nan
    np.testing.assert_allclose(semivariogram(noise, (1, 5, 20)), 4.0, rtol=0.02)


def test_spatial_family_variogram_rows() -> None:
    rng = np.random.default_rng(3)
    times = pd.date_range("2020-01-01", periods=6, freq="D")
    truth = rng.normal(size=(6, 32, 32))
    smooth = (truth + np.roll(truth, 1, -1) + np.roll(truth, 1, -2)) / 3  # less variance at every lag
    inputs = inputs_for(times, truth, np.stack([smooth, smooth], axis=1))
    rows = {(r.model, r.metric, r.scale): r.value for r in REGISTRY["spatial"](inputs)}
    assert rows[("truth", "variogram", 1.0)] == pytest.approx(1.0, rel=0.1)
    assert rows[("copy", "variogram_log_error", None)] == pytest.approx(0.0, abs=1e-12)
    assert rows[("stride", "variogram_log_error", None)] > 0.2
    assert ("truth", "variogram", 32.0) not in rows  # not below the grid's size
