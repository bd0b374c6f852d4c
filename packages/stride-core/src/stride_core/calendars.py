"""Time axes in any CF calendar: one place for decoding, naming, printing, parsing and the seasonal phase.

Climate-model output comes in calendars numpy's datetime64 cannot hold (`360_day`, `noleap`/`365_day`,
`all_leap`, `julian`); reanalyses and observations in the standard one. A STRIDE time axis is therefore a
`TimeIndex`: a `pandas.DatetimeIndex` for the standard calendars (so existing code and bit-identical results
stay as they were) or an xarray `CFTimeIndex` of cftime dates for the others. xarray and cftime (the CF
reference implementation of these calendars, maintained with netCDF4-python) do the calendar arithmetic; this
module only picks between the two and gives both one interface.

Date strings are ISO `YYYY-MM-DD[THH:MM[:SS]]` read in a given calendar, so "2000-02-30" is a date of a
`360_day` axis. Printed dates (`iso`, `date_key`) are the same strings, whatever the calendar: they name a
stamp in manifests, MLflow parameters, metrics tables and per-member seeds.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date, datetime
from typing import Any, TypeAlias

import cftime
import numpy as np
import pandas as pd
import xarray as xr
from numpy.typing import NDArray

TimeIndex: TypeAlias = pd.DatetimeIndex | xr.CFTimeIndex
"""A time axis: DatetimeIndex (standard calendars, datetime64) or CFTimeIndex (cftime dates, any calendar)."""

CalendarDate: TypeAlias = pd.Timestamp | cftime.datetime
"""One date, comparable with the `TimeIndex` of its calendar."""

STANDARD = "standard"
"""The calendar name of a datetime64 axis (proleptic Gregorian; CF's `standard` within datetime64's range)."""

ALIASES = {
    "gregorian": "standard",
    "standard": "standard",
    "proleptic_gregorian": "proleptic_gregorian",
    "noleap": "noleap",
    "365_day": "noleap",
    "all_leap": "all_leap",
    "366_day": "all_leap",
    "360_day": "360_day",
    "julian": "julian",
}
"""CF calendar names (lower case) -> the canonical name STRIDE records (cftime's own names)."""

GREGORIAN = {"standard", "proleptic_gregorian"}
"""Calendars whose dates from 1678 to 2262 datetime64 holds exactly."""

_ISO = re.compile(r"^\s*(-?\d{1,4})-(\d{1,2})-(\d{1,2})(?:[T ](\d{1,2}):(\d{2})(?::(\d{2})(?:\.\d*)?)?)?\s*$")


def canonical_calendar(name: str) -> str:
    """The canonical name of a CF calendar (`365_day` -> `noleap`, `gregorian` -> `standard`).

    Raises ValueError naming the known calendars for anything else.
    """
    found = ALIASES.get(str(name).strip().lower())
    if found is None:
        raise ValueError(f"unknown calendar '{name}'; known: {', '.join(sorted(ALIASES))}")
    return found


def time_coder() -> xr.coders.CFDatetimeCoder:
    """The decoder sources are opened with: datetime64 where it holds the calendar, cftime dates elsewhere."""
    return xr.coders.CFDatetimeCoder(use_cftime=None)


def time_index(values: Any) -> TimeIndex:
    """The time axis of `values` (a DataArray/Index/array of datetime64, or of cftime or datetime objects).

    datetime64 stays a DatetimeIndex; cftime dates become a CFTimeIndex keeping their calendar. Anything else
    (numbers: times that were not decoded) raises TypeError saying so.
    """
    if isinstance(values, (pd.DatetimeIndex, xr.CFTimeIndex)):
        return values
    if isinstance(values, xr.DataArray):
        values = values.values
    array = np.asarray(values)
    if np.issubdtype(array.dtype, np.datetime64):
        return pd.DatetimeIndex(array)
    if array.dtype == object and array.size and all(isinstance(v, cftime.datetime) for v in array.flat):
        return xr.CFTimeIndex(array)
    if array.dtype == object and array.size and all(isinstance(v, datetime) for v in array.flat):
        return pd.DatetimeIndex(array)
    if array.size == 0:
        return pd.DatetimeIndex(array.astype("datetime64[ns]"))
    raise TypeError(
        f"time values of dtype {array.dtype} are not dates (first: {array.flat[0]!r}); the time axis needs CF "
        f"'units' such as 'days since 1850-01-01' and a 'calendar' attribute"
    )


def calendar_of(times: TimeIndex) -> str:
    """The canonical calendar name of a time axis; `standard` for a datetime64 axis."""
    if isinstance(times, xr.CFTimeIndex):
        return canonical_calendar(times.calendar) if len(times) else STANDARD
    return STANDARD


def _fields(stamp: Any) -> tuple[int, int, int, int, int, int]:
    if isinstance(stamp, np.datetime64):
        stamp = pd.Timestamp(stamp)
    return (stamp.year, stamp.month, stamp.day, stamp.hour, stamp.minute, stamp.second)


def iso(stamp: Any) -> str:
    """`YYYY-MM-DDTHH:MM:SS` of a date in any calendar (pd.Timestamp, datetime, datetime64 or cftime)."""
    year, month, day, hour, minute, second = _fields(stamp)
    return f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{second:02d}"


def date_key(stamp: Any) -> str:
    """A stable string naming one stamp (its `iso` form), e.g. to hash into a per-member seed: the same label
    gives the same key in every calendar and on every machine, and no two stamps of one axis share a key."""
    return iso(stamp)


def iso_strings(times: Iterable[Any]) -> list[str]:
    """`iso` of every stamp."""
    return [iso(stamp) for stamp in times]


def parse_fields(text: str) -> tuple[int, int, int, int, int, int]:
    """(year, month, day, hour, minute, second) of an ISO date string, without checking it against a calendar.

    Raises ValueError for anything but `YYYY-MM-DD[THH:MM[:SS]]`.
    """
    match = _ISO.match(text)
    if match is None:
        raise ValueError(f"'{text}' is not a date of the form YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS]")
    year, month, day, hour, minute, second = (int(group) if group else 0 for group in match.groups())
    return year, month, day, hour, minute, second


def parse_date(text: str | date | datetime, calendar: str, *, use_cftime: bool | None = None) -> CalendarDate:
    """A date string (or datetime) read in `calendar`; ValueError where the calendar has no such date.

    `use_cftime` None: a pd.Timestamp for the Gregorian calendars, a cftime date otherwise; pass True to compare
    with a CFTimeIndex of a Gregorian calendar (see `date_in`).
    """
    name = canonical_calendar(calendar)
    if isinstance(text, (date, datetime)):
        fields = (
            text.year,
            text.month,
            text.day,
            *((text.hour, text.minute, text.second) if isinstance(text, datetime) else (0, 0, 0)),
        )
    else:
        fields = parse_fields(text)
    if use_cftime is None:
        use_cftime = name not in GREGORIAN
    if not use_cftime:
        try:
            return pd.Timestamp(*fields)
        except (ValueError, OverflowError) as exc:
            raise ValueError(f"'{iso_of(fields)}' is not a date of the {name} calendar ({exc})") from None
    try:
        return cftime.datetime(*fields, calendar=name)
    except ValueError as exc:
        raise ValueError(f"'{iso_of(fields)}' is not a date of the {name} calendar ({exc})") from None


def iso_of(fields: tuple[int, ...]) -> str:
    year, month, day, hour, minute, second = fields
    return f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{second:02d}"


def date_in(times: TimeIndex, text: str | date | datetime) -> CalendarDate:
    """`text` read in the calendar of `times`, as a date comparable with it (`times >= date_in(times, ...)`)."""
    return parse_date(text, calendar_of(times), use_cftime=isinstance(times, xr.CFTimeIndex))


def elapsed_seconds(times: TimeIndex, origin: Any = None) -> NDArray[np.float64]:
    """Seconds from `origin` (default: the first stamp; else a date of the same calendar and type), counted in
    the axis's own calendar (in `360_day`, 2000-02-30 to 2000-03-01 is one day): differences of these give
    time steps and gaps on any calendar."""
    if len(times) == 0:
        return np.zeros(0, dtype=np.float64)
    deltas = pd.TimedeltaIndex(times - (times[0] if origin is None else origin))
    return deltas.total_seconds().to_numpy(dtype=np.float64)


def hour_of_day(times: TimeIndex) -> NDArray[np.float64]:
    """Fractional UTC hour of every stamp, 0 <= h < 24."""
    return (
        np.asarray(times.hour, dtype=np.float64)
        + np.asarray(times.minute, dtype=np.float64) / 60.0
        + np.asarray(times.second, dtype=np.float64) / 3600.0
    )


def days_in_year(times: TimeIndex) -> NDArray[np.float64]:
    """Length in days of each stamp's year in its calendar: 360 (`360_day`), 365 (`noleap`), 366
    (`all_leap`), 365 or 366 by the Julian or Gregorian rules (1582 of `standard` has 355)."""
    years = np.asarray(times.year, dtype=np.int64)
    if isinstance(times, pd.DatetimeIndex):
        return np.where(times.is_leap_year, 366.0, 365.0)
    calendar = calendar_of(times)
    last_day = 30 if calendar == "360_day" else 31
    lengths = {
        int(year): float(cftime.datetime(int(year), 12, last_day, calendar=calendar).dayofyr)
        for year in np.unique(years)
    }
    return np.array([lengths[int(year)] for year in years], dtype=np.float64)


def year_phase(times: TimeIndex) -> NDArray[np.float64]:
    """Fraction of its calendar year elapsed at each stamp: (d - 1 + h / 24) / L, in [0, 1).

    d is the day of the year (1 on 1 January), h the fractional hour and L the length of that year in the
    stamp's own calendar (`days_in_year`). So 1 January 00:00 is 0 in every calendar and year, and mid-year
    is 0.5 whether the year has 360, 365 or 366 days: 1 July 00:00 of a `360_day` year is (181 - 1) / 360 =
    0.5, 2 July 12:00 of a 365-day year is 182.5 / 365 = 0.5.

    Why the fraction of the year rather than the day number: a climate model running a 360-day (or 365-day)
    calendar fits the whole annual cycle of insolation into its year, so the same season sits at the same
    fraction of the year in every calendar, while day numbers drift apart by up to 6 days by December. A
    model conditioned on this phase (stride_core.features `doy`) can be trained on one calendar and applied
    to another; leap days do not shift the phase of the following years either.
    """
    return days_into_year(times) / days_in_year(times)


def days_into_year(times: TimeIndex) -> NDArray[np.float64]:
    """Days elapsed since 1 January 00:00 of each stamp's year, d - 1 + h / 24 (see `year_phase`)."""
    if isinstance(times, pd.DatetimeIndex):
        day = times.day_of_year.to_numpy(dtype=np.float64)
    else:
        day = np.asarray(times.dayofyear, dtype=np.float64)
    return day - 1 + hour_of_day(times) / 24.0


def to_datetime_or_iso(stamp: Any) -> datetime | str:
    """A `datetime` for a date of a Gregorian datetime64 axis, else its `iso` string: what contracts that hold
    dates of any calendar (e.g. `SplitRange`) store."""
    if isinstance(stamp, (pd.Timestamp, np.datetime64)):
        return pd.Timestamp(stamp).to_pydatetime()
    if isinstance(stamp, cftime.datetime) and canonical_calendar(stamp.calendar or STANDARD) in GREGORIAN:
        try:
            return datetime(*_fields(stamp))
        except ValueError:
            return iso(stamp)
    if isinstance(stamp, datetime):
        return stamp
    return iso(stamp)
