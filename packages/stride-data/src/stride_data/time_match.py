"""Pair the time stamps of a separate LR source with the HR ones (`lr_source.time_match`).

Daily data come stamped at 00:00, 12:00 or the end of the day, and with day boundaries that differ (07-07 UTC
gauges, 09-09 UTC HadUK). Each HR time step takes at most one LR stamp; HR steps without one are dropped
(logged), and no pair at all is a one-line error showing a few stamps of each side. The dataset's time axis
stays the HR one; the LR field of a pair is the LR source at its own stamp, never interpolated in time.

- `exact`: the same stamp label (`YYYY-MM-DDTHH:MM:SS`; labels compare across calendars).
- `nearest`: the LR stamp closest to the HR one, at most `tolerance_hours` away (ties take the earlier LR
  stamp); both sources in one calendar.
- `same_day`: the LR stamp of the same day. The day of a stamp t is the calendar date of t - s hours, with
  s = `day_start_hour` for HR stamps and `lr_day_start_hour` for LR stamps: a source whose days run from hour
  s to hour s of the next day and that is stamped inside its day sets s to that boundary hour; one stamped at
  the end of its day (e.g. 2000-01-02T07:00 for the gauge day that began 2000-01-01 07:00) sets s to 24 plus
  it (31). So a 07-07 UTC gauge day stamped at its 07:00 start (s = 7), or at 00:00 of its first date (s = 0),
  pairs with the 00-24 UTC LR day it starts on (s = 0 for stamps at 00:00 or 12:00, 24 for stamps at the next
  midnight), the LR day it overlaps most (17 h of 24; 15 h for a 09-09 HadUK day). Several HR steps may share
  one LR day (hourly HR, daily LR); two LR stamps on one day are an error.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from stride_contracts.dataset import TimeMatch
from stride_core.calendars import TimeIndex, calendar_of, date_key, elapsed_seconds, iso
from stride_core.errors import InputDataError
from stride_core.progress import get_logger
from stride_data.config import LRSourceConfig

log = get_logger("stride-data")

SHOWN = 3
"""Stamps of each side an error or log line shows."""


@dataclass(frozen=True)
class Pairing:
    """HR time steps kept and, for each, the position of its LR stamp on the LR axis."""

    hr_keep: NDArray[np.int64]
    """Positions on the HR axis of the HR steps that got an LR stamp (sorted)."""
    lr_position: NDArray[np.int64]
    """For each kept HR step, the position of its LR stamp on the LR axis."""
    record: TimeMatch


def _shown(times: TimeIndex, positions: NDArray[np.int64]) -> str:
    picked = [iso(times[int(p)]) for p in positions[:SHOWN]]
    return ", ".join(picked) + (", ..." if positions.size > SHOWN else "") if picked else "none"


def _day_labels(times: TimeIndex, start_hour: float) -> NDArray[np.str_]:
    shifted = times - pd.Timedelta(hours=start_hour)
    return np.array([date_key(t)[:10] for t in shifted])


def pair_times(hr: TimeIndex, lr: TimeIndex, config: LRSourceConfig, hr_path: Path, lr_path: Path) -> Pairing:
    """Pair HR and LR stamps by `config.time_match`; an error naming both sides when nothing pairs."""
    mode = config.time_match
    same_calendar = calendar_of(hr) == calendar_of(lr) and type(hr) is type(lr)
    if mode == "nearest" and not same_calendar:
        raise InputDataError(
            f"{lr_path}: lr_source.time_match nearest needs both sources in one calendar (HR {calendar_of(hr)}, "
            f"LR {calendar_of(lr)}); use exact or same_day, which compare date labels"
        )
    lr_position = np.full(len(hr), -1, dtype=np.int64)
    if mode == "exact":
        where = {date_key(t): i for i, t in enumerate(lr)}
        lr_position[:] = [where.get(date_key(t), -1) for t in hr]
    elif mode == "same_day":
        lr_days = _day_labels(lr, config.lr_day_start_hour)
        unique, counts = np.unique(lr_days, return_counts=True)
        if (counts > 1).any():
            day = unique[counts > 1][0]
            raise InputDataError(
                f"{lr_path}: lr_source.time_match same_day needs one LR stamp per day, but day {day} (shifted by "
                f"lr_day_start_hour {config.lr_day_start_hour:g}) has {counts[counts > 1][0]}; aggregate the "
                f"LR source to daily values or use exact/nearest"
            )
        where = {day: i for i, day in enumerate(lr_days)}
        lr_position[:] = [where.get(day, -1) for day in _day_labels(hr, config.day_start_hour)]
    else:
        origin = min(hr[0], lr[0]) if len(hr) and len(lr) else None
        if origin is not None:
            hr_s = elapsed_seconds(hr, origin)
            lr_s = elapsed_seconds(lr, origin)
            order = np.argsort(lr_s, kind="stable")
            sorted_s = lr_s[order]
            right = np.clip(np.searchsorted(sorted_s, hr_s, side="left"), 0, len(lr) - 1)
            left = np.clip(right - 1, 0, len(lr) - 1)
            # Ties go to the earlier LR stamp: `left` wins when it is as close as `right`.
            take_left = np.abs(hr_s - sorted_s[left]) <= np.abs(sorted_s[right] - hr_s)
            best = np.where(take_left, left, right)
            close = np.abs(sorted_s[best] - hr_s) <= config.tolerance_hours * 3600.0 + 1e-6
            lr_position[close] = order[best[close]]
    matched = lr_position >= 0
    if not matched.any():
        raise InputDataError(
            f"{lr_path}: no time step in common with {hr_path.name} (time_match {mode}); HR stamps: "
            f"{_shown(hr, np.arange(len(hr)))} ({len(hr)}, {calendar_of(hr)}); LR stamps: "
            f"{_shown(lr, np.arange(len(lr)))} ({len(lr)}, {calendar_of(lr)}); set lr_source.time_match "
            f"(nearest with tolerance_hours, or same_day with day_start_hour) or use an LR source covering the HR "
            f"times"
        )
    hr_keep = np.flatnonzero(matched).astype(np.int64)
    used = lr_position[matched]
    unused = np.setdiff1d(np.arange(len(lr)), used)
    dropped = np.flatnonzero(~matched).astype(np.int64)
    if dropped.size:
        shown = _shown(hr, dropped)
        log.info(
            "dropping %d HR time step(s) absent from %s (%s): %s", dropped.size, lr_path.name, mode, shown
        )
    if unused.size:
        shown = _shown(lr, unused)
        log.info(
            "dropping %d LR time step(s) absent from %s (%s): %s", unused.size, hr_path.name, mode, shown
        )
    offset = None
    if same_calendar:
        origin = min(hr[0], lr[0])
        gaps = np.abs(elapsed_seconds(hr[hr_keep], origin) - elapsed_seconds(lr[used], origin))
        offset = float(gaps.max()) / 3600.0
    record = TimeMatch(
        mode=mode,
        tolerance_hours=config.tolerance_hours,
        day_start_hour=config.day_start_hour,
        lr_day_start_hour=config.lr_day_start_hour,
        lr_calendar=calendar_of(lr),
        n_matched=int(hr_keep.size),
        n_lr_unused=int(unused.size),
        max_offset_hours=offset,
    )
    return Pairing(hr_keep=hr_keep, lr_position=used.astype(np.int64), record=record)
