"""Dates to plot, named in the samples' own calendar."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest
import xarray as xr

from stride_core.errors import ConfigError
from stride_plot.config import PlotConfig
from stride_plot.quicklook import choose_dates

SOURCE = Path("samples.zarr")


def test_dates_of_a_360_day_run() -> None:
    times = xr.date_range("2000-02-28", periods=4, freq="D", calendar="360_day", use_cftime=True)
    config = PlotConfig(samples=SOURCE, dates=["2000-02-30", datetime(2000, 2, 29)])
    assert choose_dates(times, list(config.dates), 2, SOURCE) == [2, 1]
    with pytest.raises(ConfigError, match=r"not in the samples .*360_day calendar"):
        choose_dates(times, ["2000-03-05"], 2, SOURCE)


def test_dates_of_a_standard_run_and_a_date_the_calendar_lacks() -> None:
    times = pd.date_range("2019-03-01", periods=6, freq="h")
    assert choose_dates(times, [datetime(2019, 3, 1, 5), "2019-03-01T01:00"], 2, SOURCE) == [5, 1]
    assert choose_dates(times, [], 3, SOURCE) == [0, 2, 5]
    with pytest.raises(ConfigError, match="not a date of the standard calendar"):
        choose_dates(times, ["2019-02-30"], 2, SOURCE)
