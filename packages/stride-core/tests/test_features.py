"""Temporal windows at split edges, data edges and gaps; cyclic time encodings; channel accounting."""

from __future__ import annotations

from datetime import UTC, datetime

import cftime
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from stride_contracts import DatasetManifest, FeatureSpec, ModelSpec, ProducerRef, SplitRange, VariableRef
from stride_contracts.dataset import GridInfo, SourceFile
from stride_core.errors import ArtifactError, ConfigError
from stride_core.features import channel_counts, temporal_windows, time_encodings, window_offsets

# Store steps 0..9 hourly, then a 5 h gap, then 10..13 hourly. Splits: train 0..5, val 6..7, (outside) 8,
# train 9..13 -- so train has runs [0..5], [9], [10..13] (9 and 10 are adjacent in the store but 5 h apart).
TIMES = pd.DatetimeIndex(
    list(pd.date_range("2020-01-01", periods=10, freq="h"))
    + list(pd.date_range("2020-01-01 14:00", periods=4, freq="h"))
)
CODES = np.array([0, 0, 0, 0, 0, 0, 1, 1, -1, 0, 0, 0, 0, 0], dtype=np.int8)


def windows(split: str = "train", **features: object) -> tuple[list[int], list[list[int]]]:
    result = temporal_windows(TIMES, CODES, split, FeatureSpec(**features), 1.0)  # type: ignore[arg-type]
    return result.anchors.tolist(), result.steps.tolist()


def test_offsets_of_centred_and_past_windows() -> None:
    assert window_offsets(FeatureSpec(temporal_steps=3)).tolist() == [-1, 0, 1]
    assert window_offsets(FeatureSpec(temporal_steps=4)).tolist() == [-1, 0, 1, 2]
    assert window_offsets(FeatureSpec(temporal_steps=3, temporal_mode="past")).tolist() == [-2, -1, 0]
    assert window_offsets(FeatureSpec(temporal_steps=1)).tolist() == [0]


def test_drop_keeps_only_windows_inside_one_run() -> None:
    anchors, steps = windows(temporal_steps=3, temporal_edge="drop")
    # Run [0..5] loses its first and last step, run [9] (alone, before the gap) is dropped, [10..13] keeps 11, 12.
    assert anchors == [1, 2, 3, 4, 11, 12]
    assert steps[0] == [0, 1, 2] and steps[3] == [3, 4, 5] and steps[4] == [10, 11, 12]


def test_clamp_repeats_the_nearest_step_of_the_same_run() -> None:
    anchors, steps = windows(temporal_steps=3, temporal_edge="clamp")
    assert anchors == [0, 1, 2, 3, 4, 5, 9, 10, 11, 12, 13]
    by_anchor = dict(zip(anchors, steps, strict=True))
    assert by_anchor[0] == [0, 0, 1]  # data edge
    assert by_anchor[5] == [4, 5, 5]  # split edge: step 6 is val
    assert by_anchor[9] == [9, 9, 9]  # both sides: -1 before it, a time gap after it
    assert by_anchor[10] == [10, 10, 11]  # time gap before it although 9 is the previous store step
    assert by_anchor[13] == [12, 13, 13]  # data edge


def test_past_windows_and_other_splits() -> None:
    anchors, steps = windows(temporal_steps=2, temporal_mode="past", temporal_edge="drop")
    assert anchors == [1, 2, 3, 4, 5, 11, 12, 13]
    assert steps[0] == [0, 1]
    anchors, steps = windows("val", temporal_steps=2, temporal_mode="past", temporal_edge="clamp")
    assert anchors == [6, 7] and steps == [[6, 6], [6, 7]]
    anchors, steps = windows("train", temporal_steps=1)
    assert anchors == [0, 1, 2, 3, 4, 5, 9, 10, 11, 12, 13] and steps == [[a] for a in anchors]


def test_window_errors_name_the_split_and_fix() -> None:
    with pytest.raises(ArtifactError, match="split 'test' has no time steps"):
        windows("test")
    with pytest.raises(ConfigError, match=r"no window of temporal_steps=3.*'val'.*temporal_edge=clamp"):
        windows("val", temporal_steps=3, temporal_edge="drop")
    with pytest.raises(ConfigError, match="unknown split"):
        windows("holdout")


def test_time_encodings_are_unit_circle_pairs_in_the_given_order() -> None:
    times = pd.DatetimeIndex(["2021-01-01 00:00", "2021-07-02 12:00", "2020-12-31 18:00", "2020-01-01 06:00"])
    enc = time_encodings(times, ("doy", "hour"))
    assert enc.shape == (4, 4) and enc.dtype == np.float32
    np.testing.assert_allclose(enc[:, 0] ** 2 + enc[:, 1] ** 2, 1, atol=1e-6)
    np.testing.assert_allclose(enc[0], [0, 1, 0, 1], atol=1e-7)  # 1 January 00:00: phase 0 for both
    # 2 July 12:00 is day 182.5 of 365: exactly half a year in 2021.
    np.testing.assert_allclose(enc[1, :2], [0, -1], atol=1e-6)
    np.testing.assert_allclose(enc[1, 2:], [0, -1], atol=1e-6)  # noon
    # 31 Dec 18:00 in the leap year 2020: phase 2 pi (365.75 / 366), just before the year wraps.
    phase = 2 * np.pi * 365.75 / 366
    np.testing.assert_allclose(enc[2, :2], [np.sin(phase), np.cos(phase)], atol=1e-6)
    np.testing.assert_allclose(enc[3, 2:], [1, 0], atol=1e-6)  # 06:00 is a quarter day
    hour_first = time_encodings(times, ("hour", "doy"))
    np.testing.assert_array_equal(hour_first, enc[:, [2, 3, 0, 1]])
    assert time_encodings(times, ()).shape == (4, 0)


def _manifest(hr: tuple[int, int] = (32, 48), factor: int = 4) -> DatasetManifest:
    times = pd.date_range("2020-01-01", periods=2, freq="h")
    return DatasetManifest(
        producer=ProducerRef(tool="test", stride_version="0", created_utc=datetime.now(UTC)),
        target=[VariableRef(name="t2m", units="K"), VariableRef(name="precip", units="mm h-1")],
        dynamic=[
            VariableRef(name="t2m", units="K"),
            VariableRef(name="msl", units="Pa"),
            VariableRef(name="precip", units="mm h-1"),
        ],
        static=[VariableRef(name="orography", units="m")],
        grid=GridInfo(
            hr_shape=hr, lr_shape=(hr[0] // factor, hr[1] // factor), factor=factor, lat_descending=True
        ),
        splits={"train": SplitRange(start=times[0], end=times[-1])},
        time_step_hours=1.0,
        n_times=2,
        sources=[SourceFile(path="x", size_bytes=0, sha256="0" * 64, variables=["t2m"])],
    )


def test_channel_counts_from_manifest_features_and_patch() -> None:
    features = FeatureSpec(temporal_steps=3, time_features=("doy", "hour"), context_margin=2)
    counts = channel_counts(_manifest(), features, (16, 24))
    assert (counts.n_target, counts.n_dynamic, counts.n_static, counts.num_var_labels) == (2, 3, 1, 2)
    assert (counts.temporal_steps, counts.n_time_features) == (3, 4)
    assert counts.hr_shape == (16, 24) and counts.lr_shape == (4, 6) and counts.context_shape == (8, 10)
    assert counts.in_channels == 3 * 3 + 1 and counts.context_input_channels == 9
    whole = channel_counts(_manifest(), FeatureSpec(), None)
    assert whole.hr_shape == (32, 48) and whole.lr_shape == (8, 12) and whole.context_shape is None
    assert whole.in_channels == 4 and whole.context_input_channels == 0
    spec = ModelSpec(**counts.model_spec_fields(), channel_mult=(1, 2))
    assert spec.in_channels == counts.in_channels and spec.lr_shape == (4, 6)


def test_channel_counts_reject_a_patch_off_the_lr_grid() -> None:
    with pytest.raises(
        ConfigError, match="patch width 22 is not a positive multiple of the coarsening factor 4"
    ):
        channel_counts(_manifest(), FeatureSpec(), (16, 22))
    with pytest.raises(ConfigError, match="patch height 64 exceeds"):
        channel_counts(_manifest(), FeatureSpec(), (64, 24))


def _cf_daily(calendar: str, start: str, periods: int) -> xr.CFTimeIndex:
    return xr.date_range(start, periods=periods, freq="D", calendar=calendar, use_cftime=True)


@pytest.mark.parametrize("calendar", ["360_day", "noleap", "all_leap", "julian"])
def test_windows_on_cftime_axes_follow_their_calendar(calendar: str) -> None:
    """Daily steps across the end of February are contiguous in each calendar; a missing day is a gap."""
    days = _cf_daily(calendar, "2001-02-26", 8)
    codes = np.zeros(8, dtype=np.int8)
    full = temporal_windows(days, codes, "train", FeatureSpec(temporal_steps=3, temporal_edge="drop"), 24.0)
    assert full.anchors.tolist() == [1, 2, 3, 4, 5, 6]
    gapped = days.delete(4)  # drop one day: the windows spanning it go
    cut = temporal_windows(
        gapped, codes[:7], "train", FeatureSpec(temporal_steps=3, temporal_edge="drop"), 24.0
    )
    assert cut.anchors.tolist() == [1, 2, 5]


def test_doy_encoding_covers_the_whole_cycle_in_every_calendar() -> None:
    """One year of daily stamps at noon spans the full circle in every calendar (its mean is the centre, its
    last day is one step before phase 0), so 30 December of a 360-day year sits where 31 December of a
    365-day year does and not five days early, as a day number over 365 would put it."""
    years = {
        "360_day": _cf_daily("360_day", "2001-01-01T12:00", 360),
        "noleap": _cf_daily("noleap", "2001-01-01T12:00", 365),
        "all_leap": _cf_daily("all_leap", "2001-01-01T12:00", 366),
        "standard": pd.date_range("2001-01-01T12:00", periods=365, freq="D"),
    }
    for calendar, times in years.items():
        enc = time_encodings(times, ("doy",)).astype(np.float64)
        np.testing.assert_allclose(enc.mean(axis=0), [0, 0], atol=1e-6, err_msg=calendar)
        last = np.arctan2(enc[-1, 0], enc[-1, 1]) % (2 * np.pi)
        np.testing.assert_allclose(last, 2 * np.pi * (1 - 0.5 / len(times)), atol=1e-5, err_msg=calendar)


def test_a_model_trained_on_one_calendar_sees_the_same_season_on_another() -> None:
    """The features a standard-calendar model saw on the 15th of each month at 00:00 are within 2.5 days of
    phase from those of the same date in a 360_day or noleap input (months of 30 days shift mid-March by two
    days at most), while a day number over 365 would put 15 December of a 360-day year 4 days early."""
    standard = pd.DatetimeIndex([f"2001-{m:02d}-15" for m in range(1, 13)])
    reference = time_encodings(standard, ("doy", "hour")).astype(np.float64)
    for calendar in ("360_day", "noleap"):
        other = xr.CFTimeIndex([cftime.datetime(2001, m, 15, calendar=calendar) for m in range(1, 13)])
        enc = time_encodings(other, ("doy", "hour")).astype(np.float64)
        angle = np.arccos(np.clip((enc[:, :2] * reference[:, :2]).sum(axis=1), -1, 1))
        assert angle.max() < 2 * np.pi * 2.5 / 365, calendar
        np.testing.assert_array_equal(enc[:, 2:], reference[:, 2:])
    december = time_encodings(xr.CFTimeIndex([cftime.datetime(2001, 12, 15, calendar="360_day")]), ("doy",))
    standard_day = 348  # days since 1 January of 15 December 2001
    naive_lag_days = standard_day - 344  # 15 December is day 345 of a 360-day year
    lag_days = standard_day - 365 * (np.arctan2(*december[0]) % (2 * np.pi)) / (2 * np.pi)
    assert naive_lag_days == pytest.approx(4) and abs(lag_days) < 1.5
