"""stride_core.calendars against cftime and xarray's own calendar arithmetic as references."""

from __future__ import annotations

from datetime import datetime

import cftime
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from stride_core import calendars

CALENDARS = ["standard", "proleptic_gregorian", "noleap", "all_leap", "360_day", "julian"]


def axis(
    calendar: str, start: str = "1999-12-30", periods: int = 800, freq: str = "13h"
) -> calendars.TimeIndex:
    return calendars.time_index(
        xr.date_range(start, periods=periods, freq=freq, calendar=calendar, use_cftime=True)
    )


def test_canonical_names_and_unknown() -> None:
    assert calendars.canonical_calendar("365_day") == "noleap"
    assert calendars.canonical_calendar("Gregorian") == "standard"
    assert calendars.canonical_calendar("366_day") == "all_leap"
    with pytest.raises(ValueError, match="unknown calendar 'mars'"):
        calendars.canonical_calendar("mars")


def test_time_index_keeps_datetime64_and_cftime() -> None:
    stamps = np.array(["2019-03-01T00", "2019-03-01T01"], dtype="datetime64[ns]")
    standard = calendars.time_index(xr.DataArray(stamps))
    assert isinstance(standard, pd.DatetimeIndex) and calendars.calendar_of(standard) == "standard"
    cf = calendars.time_index(np.array([cftime.datetime(2000, 2, 30, calendar="360_day")]))
    assert isinstance(cf, xr.CFTimeIndex) and calendars.calendar_of(cf) == "360_day"
    with pytest.raises(TypeError, match="not dates"):
        calendars.time_index(np.array([1.0, 2.0]))


def test_decoding_a_netcdf_keeps_the_calendar(tmp_path) -> None:
    """What the source opener does: datetime64 for a standard file, cftime for a 360_day one."""
    for calendar, expected in (("standard", pd.DatetimeIndex), ("360_day", xr.CFTimeIndex)):
        times = xr.date_range("2000-02-28", periods=4, freq="D", calendar=calendar, use_cftime=True)
        path = tmp_path / f"{calendar}.nc"
        xr.Dataset({"v": ("time", np.arange(4.0))}, coords={"time": times}).to_netcdf(path, engine="h5netcdf")
        with xr.open_dataset(path, engine="h5netcdf", decode_times=calendars.time_coder()) as opened:
            index = calendars.time_index(opened["time"])
        assert isinstance(index, expected)
        assert calendars.calendar_of(index) == calendars.canonical_calendar(calendar)
        assert calendars.iso_strings(index)[2] == (
            "2000-03-01T00:00:00" if calendar == "standard" else "2000-02-30T00:00:00"
        )


@pytest.mark.parametrize("calendar", CALENDARS)
def test_days_in_year_matches_xarray_date_range(calendar: str) -> None:
    times = axis(calendar, start="1899-06-01", periods=6, freq="365D")
    expected = []
    for t in times:
        days = xr.date_range(f"{t.year:04d}-01-01", periods=400, freq="D", calendar=calendar, use_cftime=True)
        expected.append(int(np.sum(days.year == t.year)))
    np.testing.assert_array_equal(calendars.days_in_year(times), expected)


@pytest.mark.parametrize("calendar", CALENDARS)
def test_year_phase_is_elapsed_fraction_of_the_year(calendar: str) -> None:
    """Reference: (t - 1 Jan) / (1 Jan next year - 1 Jan) by cftime's calendar arithmetic."""
    times = axis(calendar)
    expected = []
    for t in times:
        start = cftime.datetime(t.year, 1, 1, calendar=calendar)
        end = cftime.datetime(t.year + 1, 1, 1, calendar=calendar)
        expected.append((t - start).total_seconds() / (end - start).total_seconds())
    np.testing.assert_allclose(calendars.year_phase(times), expected, rtol=0, atol=1e-12)


def test_year_phase_of_datetime64_axis_equals_its_cftime_twin() -> None:
    stamps = pd.date_range("2019-12-25", periods=500, freq="7h")
    twin = axis("standard", start="2019-12-25", periods=500, freq="7h")
    np.testing.assert_allclose(calendars.year_phase(stamps), calendars.year_phase(twin), atol=1e-12)


def test_mid_year_is_half_in_every_calendar() -> None:
    mid = {
        "360_day": cftime.datetime(2001, 7, 1, calendar="360_day"),
        "noleap": cftime.datetime(2001, 7, 2, 12, calendar="noleap"),
        "all_leap": cftime.datetime(2001, 7, 2, calendar="all_leap"),
    }
    for calendar, stamp in mid.items():
        assert calendars.year_phase(xr.CFTimeIndex([stamp]))[0] == pytest.approx(0.5), calendar
    assert calendars.year_phase(pd.DatetimeIndex(["2001-07-02T12:00"]))[0] == pytest.approx(0.5)
    assert calendars.year_phase(pd.DatetimeIndex(["2000-07-02T00:00"]))[0] == pytest.approx(0.5)  # leap year


@pytest.mark.parametrize("calendar", CALENDARS)
def test_elapsed_seconds_match_cftime_date2num(calendar: str) -> None:
    times = axis(calendar, start="2000-02-27", periods=50, freq="6h")
    reference = cftime.date2num(list(times), "seconds since 2000-02-27 00:00:00", calendar=calendar)
    np.testing.assert_allclose(calendars.elapsed_seconds(times), reference)


def test_parse_date_in_each_calendar() -> None:
    date = calendars.parse_date("2000-02-30", "360_day")
    assert isinstance(date, cftime.datetime) and (date.month, date.day) == (2, 30)
    with pytest.raises(ValueError, match="not a date of the standard calendar"):
        calendars.parse_date("2000-02-30", "standard")
    with pytest.raises(ValueError, match="noleap"):
        calendars.parse_date("2000-02-29", "365_day")
    assert calendars.parse_date("2001-02-29T06:30", "all_leap").hour == 6
    assert calendars.parse_date("2000-02-29", "standard") == pd.Timestamp("2000-02-29")
    assert calendars.parse_date(datetime(2000, 1, 2, 3), "noleap") == cftime.datetime(
        2000, 1, 2, 3, calendar="noleap"
    )
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        calendars.parse_date("March 2000", "standard")


def test_date_in_compares_with_its_axis() -> None:
    times = axis("360_day", start="2000-02-28", periods=5, freq="D")
    inside = times >= calendars.date_in(times, "2000-02-30")
    assert calendars.iso_strings(times[inside])[0] == "2000-02-30T00:00:00"
    assert inside.sum() == 3
    standard = pd.date_range("2000-02-28", periods=3, freq="D")
    assert (standard >= calendars.date_in(standard, "2000-02-29")).sum() == 2


def test_iso_and_date_key_name_stamps_of_any_type() -> None:
    stamp = cftime.datetime(1991, 1, 1, 12, calendar="noleap")
    assert calendars.iso(stamp) == "1991-01-01T12:00:00" == calendars.date_key(stamp)
    assert calendars.iso(np.datetime64("1991-01-01T12:00")) == "1991-01-01T12:00:00"
    assert calendars.iso(pd.Timestamp("1991-01-01T12")) == calendars.iso(datetime(1991, 1, 1, 12))
    keys = [calendars.date_key(t) for t in axis("360_day", periods=100, freq="6h")]
    assert len(set(keys)) == 100


def test_to_datetime_or_iso() -> None:
    assert calendars.to_datetime_or_iso(pd.Timestamp("2000-01-01")) == datetime(2000, 1, 1)
    assert (
        calendars.to_datetime_or_iso(cftime.datetime(2000, 2, 30, calendar="360_day"))
        == "2000-02-30T00:00:00"
    )


def test_yaml_configs_keep_dates_the_standard_calendar_lacks() -> None:
    from stride_core.config import safe_load

    loaded = safe_load("end: 2000-02-30\nstart: 2000-01-01\nat: 2001-02-30T06:00:00")
    assert loaded["end"] == "2000-02-30" and loaded["at"] == "2001-02-30T06:00:00"
    assert calendars.parse_date(loaded["end"], "360_day") == cftime.datetime(2000, 2, 30, calendar="360_day")
    assert str(loaded["start"]) == "2000-01-01"  # valid dates load as PyYAML always loaded them


def test_elapsed_seconds_from_an_origin() -> None:
    times = axis("360_day", start="2000-02-30", periods=3, freq="D")
    origin = cftime.datetime(2000, 2, 29, calendar="360_day")
    np.testing.assert_array_equal(calendars.elapsed_seconds(times, origin), [86400.0, 172800.0, 259200.0])
