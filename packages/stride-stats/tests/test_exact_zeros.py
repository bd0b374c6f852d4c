"""Quantiles of a field that is exactly zero on most cells are exact where they fall on the zeros."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from stride_contracts.stats import QUANTILE_LEVELS
from stride_stats.compute import QUANTILE_COLUMNS, variable_stats

REPO = Path(__file__).resolve().parents[3]
DATA = Path(os.environ.get("STRIDE_DATA") or REPO.parent / "shared" / "data")
MCH_WINTER = DATA / "radar_mch_2017-01-31.nc"


def test_median_of_a_mostly_dry_field_is_exactly_zero() -> None:
    rng = np.random.default_rng(1)
    values = np.where(rng.random((30, 20, 20)) < 0.8, 0.0, rng.gamma(0.7, 3.0, size=(30, 20, 20)))
    stats = variable_stats(values, log_eps=0.01, bins=100, task_values=7 * 20 * 20)
    # np.quantile's levels on the zeros are 0 exactly; one bin width of the positive part is the error above.
    positive = values[values > 0]
    width = (positive.max() - positive.min()) / 100
    for name, level in zip(QUANTILE_COLUMNS, QUANTILE_LEVELS, strict=True):
        expected = float(np.quantile(values, level))
        if expected == 0.0:
            assert stats[name] == 0.0, name
        else:
            assert abs(stats[name] - expected) < width, name


def test_an_atom_that_spans_chunks_is_counted_once_per_value() -> None:
    # The minimum atom sits in only some chunks: chunks with a higher minimum must not count their minimum.
    values = np.array([5.0, 6.0, 7.0, 0.0, 0.0, 0.0, 0.0, 8.0, 9.0, 10.0, 0.0, 0.0])
    stats = variable_stats(values, log_eps=0.01, bins=10_000, task_values=3)
    # Six zeros of twelve: q01..q25 on the atom, q50 halfway between its last value and the first positive one
    # (np.quantile's rule, exact), the upper levels read from the six positive values (to their spacing, 1).
    assert (stats["q01"], stats["q05"], stats["q25"]) == (0.0, 0.0, 0.0)
    assert stats["q50"] == pytest.approx(float(np.quantile(values, 0.5)), rel=1e-12)
    for name, level in (("q75", 0.75), ("q95", 0.95), ("q99", 0.99)):
        assert abs(stats[name] - float(np.quantile(values, level))) < 1.0, name


@pytest.mark.skipif(not MCH_WINTER.is_file(), reason=f"real radar file missing: {MCH_WINTER}")
def test_quantiles_of_real_winter_radar_match_numpy() -> None:
    # MeteoSwiss radar precipitation of 2017-01-31 on a crop of the Swiss plateau: 40 frames, NaN outside
    # the coverage, exactly 0 on most valid cells.
    with xr.open_dataset(MCH_WINTER, engine="h5netcdf") as ds:
        values = ds["precip"].isel(y=slice(256, 448), x=slice(256, 448)).values.astype(np.float64)
    valid = values[np.isfinite(values)]
    assert (valid == 0).mean() > 0.5  # the premise: dry-dominated
    bins = 20_000
    stats = variable_stats(values, log_eps=0.01, bins=bins, task_values=8 * 192 * 192)
    positive = valid[valid > 0]
    width = (positive.max() - positive.min()) / bins
    assert stats["q50"] == 0.0  # not a value inside the first histogram bin
    for name, level in zip(QUANTILE_COLUMNS, QUANTILE_LEVELS, strict=True):
        expected = float(np.quantile(valid, level))
        if expected == 0.0:
            assert stats[name] == 0.0, name
        else:
            assert abs(stats[name] - expected) < 2 * width, (name, stats[name], expected)
