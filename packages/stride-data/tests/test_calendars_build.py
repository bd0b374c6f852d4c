"""Climate-model calendars from reading to dataset.zarr, and LR/HR time stamps that differ (time_match)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from stride_contracts import DatasetManifest, FeatureSpec
from stride_core.artifacts import read_zarr_manifest
from stride_core.calendars import calendar_of, iso, iso_strings
from stride_core.data_root import resolve_data_path
from stride_core.errors import InputDataError
from stride_core.features import temporal_windows
from stride_core.splits import load_split
from stride_data.cli import main
from stride_data.config import LRSourceConfig
from stride_data.sources import open_source, source_times
from stride_data.time_match import pair_times

HR, LR = Path("hr.nc"), Path("lr.nc")


def days(
    start: str, periods: int, freq: str = "D", calendar: str = "standard"
) -> xr.CFTimeIndex | pd.DatetimeIndex:
    if calendar == "standard":
        return pd.date_range(start, periods=periods, freq=freq)
    return xr.date_range(start, periods=periods, freq=freq, calendar=calendar, use_cftime=True)


def pair(hr: object, lr: object, **config: object) -> tuple[list[str], list[str]]:
    """(HR stamps kept, the LR stamp each one got)."""
    lr_config = LRSourceConfig(path=LR, **config)  # type: ignore[arg-type]
    pairing = pair_times(hr, lr, lr_config, HR, LR)  # type: ignore[arg-type]
    return iso_strings(hr[pairing.hr_keep]), iso_strings(lr[pairing.lr_position])  # type: ignore[index]


def test_exact_match_with_no_common_stamp_shows_both_sides() -> None:
    hr = days("2000-01-01", 5)
    lr = days("2000-01-01T12:00", 5)
    with pytest.raises(InputDataError) as error:
        pair(hr, lr)
    message = str(error.value)
    assert "\n" not in message
    assert "HR stamps: 2000-01-01T00:00:00, 2000-01-02T00:00:00, 2000-01-03T00:00:00, ..." in message
    assert "LR stamps: 2000-01-01T12:00:00, 2000-01-02T12:00:00, 2000-01-03T12:00:00, ..." in message
    assert "set lr_source.time_match" in message


def test_nearest_pairs_within_tolerance_and_ties_take_the_earlier_stamp() -> None:
    hr = days("2000-01-01", 4)  # 00:00
    lr = days("2000-01-01T12:00", 4)  # 12:00: each HR day is 12 h from two LR stamps (or one at the start)
    kept, got = pair(hr, lr, time_match="nearest", tolerance_hours=12)
    assert kept == iso_strings(hr)
    assert got == ["2000-01-01T12:00:00", "2000-01-01T12:00:00", "2000-01-02T12:00:00", "2000-01-03T12:00:00"]
    with pytest.raises(InputDataError, match="no time step in common"):
        pair(hr, lr, time_match="nearest", tolerance_hours=11.5)


def test_same_day_pairs_noon_and_end_of_day_stamps_with_midnight_days() -> None:
    hr = days("2000-01-01", 4)
    assert pair(hr, days("2000-01-01T12:00", 4), time_match="same_day") == (
        iso_strings(hr),
        iso_strings(days("2000-01-01T12:00", 4)),
    )
    # LR daily means stamped at the following midnight: the 2000-01-02T00:00 stamp is the day 2000-01-01.
    end_stamped = days("2000-01-02", 4)
    kept, got = pair(hr, end_stamped, time_match="same_day", lr_day_start_hour=24)
    assert kept == iso_strings(hr) and got == iso_strings(end_stamped)
    # Without saying so, each HR day would take the LR field of the day before.
    _, shifted = pair(hr, end_stamped, time_match="same_day")
    assert shifted == iso_strings(end_stamped[:3])


@pytest.mark.parametrize(("stamp", "start_hour"), [("T07:00", 7), ("T09:00", 9), ("T07:00+1", 31)])
def test_same_day_with_gauge_and_haduk_day_boundaries(stamp: str, start_hour: float) -> None:
    """A 07-07 (or 09-09) UTC day that began on date D pairs with the 00-24 UTC LR day D it overlaps most,
    whether stamped at its start (07:00 on D) or its end (07:00 on D + 1, start hour 24 + 7)."""
    hour = stamp[1:6]
    first = "2000-01-02" if stamp.endswith("+1") else "2000-01-01"
    hr = days(f"{first}T{hour}", 3)
    lr = days("2000-01-01T12:00", 3)
    kept, got = pair(hr, lr, time_match="same_day", day_start_hour=start_hour)
    assert kept == iso_strings(hr) and got == iso_strings(lr)


def test_same_day_repeats_a_daily_lr_field_for_hourly_hr_steps_and_rejects_two_per_day() -> None:
    hr = days("2000-01-01", 48, freq="h")
    lr = days("2000-01-01T12:00", 2)
    kept, got = pair(hr, lr, time_match="same_day")
    assert len(kept) == 48 and got == ["2000-01-01T12:00:00"] * 24 + ["2000-01-02T12:00:00"] * 24
    with pytest.raises(InputDataError, match="one LR stamp per day, but day 2000-01-01"):
        pair(days("2000-01-01", 2), days("2000-01-01", 8, freq="6h"), time_match="same_day")


def test_calendars_pair_by_label_and_nearest_needs_one_calendar() -> None:
    hr = days("2001-02-27", 3, calendar="noleap")
    lr = days("2001-02-27T12:00", 4, calendar="360_day")  # 27, 28, 29, 30 February
    kept, got = pair(hr, lr, time_match="same_day")
    assert kept == iso_strings(hr[:2]) and got == ["2001-02-27T12:00:00", "2001-02-28T12:00:00"]
    with pytest.raises(InputDataError, match="nearest needs both sources in one calendar"):
        pair(hr, lr, time_match="nearest", tolerance_hours=12)


def test_time_match_fields_only_with_their_mode() -> None:
    with pytest.raises(ValueError, match="tolerance_hours applies to time_match nearest"):
        LRSourceConfig(path=LR, tolerance_hours=3)
    with pytest.raises(ValueError, match="day_start_hour"):
        LRSourceConfig(path=LR, day_start_hour=7)


def test_real_365_day_cmip6_file_keeps_its_calendar() -> None:
    dataset, path = open_source(Path("cmip6_canesm5_prsn_day_1991-2010.nc"))
    times = source_times(dataset, path)
    assert isinstance(times, xr.CFTimeIndex) and calendar_of(times) == "noleap"
    assert len(times) == 7300 == 20 * 365
    stamps = iso_strings(times)
    assert stamps[0] == "1991-01-01T12:00:00" and stamps[-1] == "2010-12-31T12:00:00"
    assert "1992-02-29T12:00:00" not in stamps and "1992-03-01T12:00:00" in stamps


def era5_in_360_day(tmp_path: Path, n_days: int = 4) -> Path:
    """The real ERA5 UK file, its first days converted to a 360_day calendar with xarray's convert_calendar
    (align_on 'date' keeps each date's label; 31 March, absent from 360-day years, is not among them)."""
    with xr.open_dataset(resolve_data_path(Path("era5_uk_t2m_2019-03.nc"))) as era5:
        converted = era5.isel(time=slice(0, 24 * n_days)).load().convert_calendar("360_day", align_on="date")
    path = tmp_path / "era5_360_day.nc"
    converted.to_netcdf(path, engine="h5netcdf")
    return path


def build(tmp_path: Path, config: str) -> int:
    (tmp_path / "data.yaml").write_text(config)
    return main(["build", "--config", str(tmp_path / "data.yaml"), "--out", str(tmp_path / "dataset.zarr")])


def test_real_era5_in_360_day_builds_a_360_day_dataset(tmp_path: Path) -> None:
    source = era5_in_360_day(tmp_path)
    code = build(
        tmp_path,
        f"source: {{path: {source}}}\ntarget: [t2m]\ndynamic: [t2m]\nstatic: [orography]\ncoarsen: {{factor: 4}}\n"
        "splits:\n  train: {start: 2019-03-01, end: 2019-03-03T23:00}\n  val: {start: 2019-03-04, end: 2019-03-30}\n",
    )
    assert code == 0
    manifest = read_zarr_manifest(tmp_path / "dataset.zarr", DatasetManifest)
    assert manifest.calendar == "360_day" and manifest.n_times == 96 and manifest.time_step_hours == 1.0
    assert iso(manifest.splits["val"].end) == "2019-03-30T00:00:00"
    with xr.open_zarr(tmp_path / "dataset.zarr") as stored:
        assert stored["time"].encoding["calendar"] == "360_day"
        times = stored.indexes["time"]
    assert isinstance(times, xr.CFTimeIndex) and times.calendar == "360_day"
    train = load_split(tmp_path / "dataset.zarr", "train")
    assert isinstance(train.times, xr.CFTimeIndex) and len(train.times) == 72
    windows = temporal_windows(
        train.times, np.zeros(72, np.int8), "train", FeatureSpec(temporal_steps=3), 1.0
    )
    assert len(windows) == 72


def test_split_dates_are_read_in_the_source_calendar(tmp_path: Path) -> None:
    """2019-02-30 exists in 360_day only: a standard-calendar source rejects it in one line naming the field."""
    source = era5_in_360_day(tmp_path, n_days=2)
    good = (
        f"source: {{path: {source}}}\ntarget: [t2m]\ndynamic: [t2m]\ncoarsen: {{factor: 4}}\n"
        "splits:\n  train: {start: 2019-02-30, end: 2019-03-02}\n"
    )
    assert build(tmp_path, good) == 0
    standard = resolve_data_path(Path("era5_uk_t2m_2019-03.nc"))
    bad = good.replace(str(source), str(standard))
    assert build(tmp_path, bad) == 2


def test_lr_source_stamped_at_noon_pairs_same_day(tmp_path: Path) -> None:
    """HR daily at 00:00 (generated), LR the real 365_day CMIP6 file (daily at 12:00): same_day pairs them; the
    manifest records the pairing and the dataset keeps the noleap calendar."""
    lat = 47.0 - 0.25 * np.arange(8)
    lon = -76.0 + 0.25 * np.arange(16)
    hr_times = days("1999-02-20", 16, calendar="noleap")
    rng = np.random.default_rng(0)
    hr = xr.Dataset(
        {
            "pr": (
                ("time", "lat", "lon"),
                rng.gamma(0.5, 2.0, (16, 8, 16)).astype("f4"),
                {"units": "mm day-1"},
            )
        },
        coords={"time": hr_times, "lat": lat, "lon": lon},
    )
    hr.to_netcdf(tmp_path / "hr.nc", engine="h5netcdf")
    config = (
        f"source: {{path: {tmp_path / 'hr.nc'}}}\n"
        "lr_source: {path: cmip6_canesm5_prsn_day_1991-2010.nc, method: bilinear, time_match: TIME_MATCH}\n"
        "target: [pr]\ndynamic: [prsn]\ncoarsen: {factor: 4}\n"
        "splits:\n  train: {start: 1999-02-20, end: 1999-03-07}\n"
    )
    assert build(tmp_path, config.replace("TIME_MATCH", "exact")) == 2  # 00:00 against 12:00: nothing pairs
    assert build(tmp_path, config.replace("TIME_MATCH", "same_day")) == 0
    manifest = read_zarr_manifest(tmp_path / "dataset.zarr", DatasetManifest)
    assert manifest.calendar == "noleap" and manifest.n_times == 16
    assert manifest.time_match is not None and manifest.time_match.mode == "same_day"
    assert manifest.time_match.lr_calendar == "noleap" and manifest.time_match.max_offset_hours == 12.0
    assert manifest.time_match.n_matched == 16 and manifest.time_match.n_lr_unused == 7300 - 16
    with xr.open_zarr(tmp_path / "dataset.zarr") as stored:
        assert iso_strings(stored.indexes["time"])[8:10] == ["1999-02-28T00:00:00", "1999-03-01T00:00:00"]
    # The same real file as an inference input on that dataset's grid (the inference build's own path):
    # all 20 years of the 365_day calendar stay, stamped at 12:00.
    (tmp_path / "inference.yaml").write_text(
        f"reference: {tmp_path / 'dataset.zarr'}\n"
        "lr_source: {path: cmip6_canesm5_prsn_day_1991-2010.nc, method: bilinear}\n"
    )
    out = tmp_path / "inference.zarr"
    assert main(["build", "--config", str(tmp_path / "inference.yaml"), "--out", str(out)]) == 0
    inference = read_zarr_manifest(out, DatasetManifest)
    assert inference.calendar == "noleap" and inference.n_times == 7300
    with xr.open_zarr(out) as stored:
        assert stored["time"].encoding["calendar"] == "noleap"
        assert iso_strings(stored.indexes["time"][[0, -1]]) == ["1991-01-01T12:00:00", "2010-12-31T12:00:00"]
