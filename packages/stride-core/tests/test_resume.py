"""Resume fingerprints of settings holding dates of any calendar."""

from __future__ import annotations

from datetime import datetime

import cftime
import pytest

from stride_core.errors import ConfigError
from stride_core.resume import fingerprint, open_work_folder


def test_fingerprint_tells_calendars_apart_and_is_stable() -> None:
    feb30 = {"dates": [cftime.datetime(2000, 2, 30, calendar="360_day")]}
    assert fingerprint(feb30) == fingerprint({"dates": [cftime.datetime(2000, 2, 30, calendar="360_day")]})
    same_label = {
        calendar: fingerprint({"start": cftime.datetime(2000, 1, 1, calendar=calendar)})
        for calendar in ("360_day", "noleap", "standard")
    }
    assert len(set(same_label.values())) == 3
    # Standard datetimes hash as before calendars (str), so work folders of earlier runs still resume.
    assert fingerprint({"start": datetime(2000, 1, 1)}) == fingerprint({"start": "2000-01-01 00:00:00"})


def test_work_folder_of_another_calendar_is_not_resumed(tmp_path) -> None:
    output = tmp_path / "samples.zarr"
    run_360 = fingerprint({"start": cftime.datetime(2000, 1, 1, calendar="360_day")})
    folder = open_work_folder(output, run_360)
    assert open_work_folder(output, run_360) == folder
    with pytest.raises(ConfigError, match="different settings"):
        open_work_folder(output, fingerprint({"start": cftime.datetime(2000, 1, 1, calendar="noleap")}))
