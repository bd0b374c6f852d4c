"""Which training dates share an evaluated date's season: same calendar month, or a day-of-year window.

The day of year is the phase of the calendar year (`stride_core.calendars.year_phase`), so a ±15-day window
means the same season in a `360_day`, `noleap` or standard calendar; training and evaluated dates may even
come in different calendars (a model trained on reanalysis applied to a GCM).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from stride_core.calendars import TimeIndex, days_in_year, hour_of_day, year_phase


def same_season(dates: TimeIndex, pool: TimeIndex, *, season: str, window_days: int) -> NDArray[np.bool_]:
    """[len(dates), len(pool)]: whether each pool date lies in the season of each date."""
    if season == "month":
        return np.asarray(dates.month)[:, None] == np.asarray(pool.month)[None, :]
    distance = np.abs(year_phase(dates)[:, None] - year_phase(pool)[None, :])
    distance = np.minimum(distance, 1.0 - distance)  # circular: 31 December is next to 1 January
    # The window is counted in days of the evaluated date's calendar year.
    return distance * days_in_year(dates)[:, None] <= window_days + 1e-9


def same_hour(dates: TimeIndex, pool: TimeIndex) -> NDArray[np.bool_]:
    """[len(dates), len(pool)]: whether the stamps fall at the same hour of day (to the minute)."""
    return np.abs(hour_of_day(dates)[:, None] - hour_of_day(pool)[None, :]) < 1.0 / 60.0
