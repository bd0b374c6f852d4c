"""Climatological ensemble: for each evaluated date, members drawn from the training split's HR truth in the
same season (calendar month, or a day-of-year window), at the same hour of day for sub-daily data.

The standard reference of probabilistic downscaling, and the only one where the target is not among the LR
inputs (no interpolation baseline exists then): a model whose CRPS is not below the climatology's has learned
nothing from its inputs. Members are a draw without replacement (with replacement only where the season holds
fewer training dates than members), seeded by (seed, the date's ISO stamp): the same date gets the same
members whatever other dates are evaluated with it. Only the drawn fields are read from the store.
"""

from __future__ import annotations

import hashlib

import numpy as np
from numpy.typing import NDArray

from stride_core.calendars import TimeIndex, iso
from stride_core.errors import ArtifactError
from stride_eval.baselines.season import same_hour, same_season
from stride_eval.baselines.settings import BaselineSettings
from stride_eval.baselines.training import TrainingSplit


def date_seed(seed: int, stamp: object) -> int:
    """A 64-bit seed from `seed` and a date (any calendar), stable across runs and processes."""
    digest = hashlib.sha256(f"{seed}:{iso(stamp)}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


def draw_members(dates: TimeIndex, train_times: TimeIndex, settings: BaselineSettings) -> NDArray[np.int64]:
    """[len(dates), members]: positions in the training split of each date's climatological members."""
    season = same_season(dates, train_times, season=settings.season, window_days=settings.window_days)
    if settings.same_hour:
        hourly = season & same_hour(dates, train_times)
    drawn = np.empty((len(dates), settings.members), dtype=np.int64)
    for i, stamp in enumerate(dates):
        candidates = np.flatnonzero(season[i])
        if settings.same_hour and np.count_nonzero(hourly[i]) >= settings.members:
            candidates = np.flatnonzero(hourly[i])
        if candidates.size == 0:
            raise ArtifactError(
                f"climatology: the training split has no date in the season of {iso(stamp)} "
                f"(season={settings.season}); use baseline.season=window with a larger baseline.window_days"
            )
        rng = np.random.default_rng(date_seed(settings.seed, stamp))
        replace = candidates.size < settings.members
        drawn[i] = rng.choice(candidates, size=settings.members, replace=replace)
    return drawn


def climatological_ensemble(
    split: TrainingSplit, variable: str, dates: TimeIndex, settings: BaselineSettings
) -> NDArray[np.float32]:
    """[time, member, H, W]: the climatological members of `variable` for each of `dates`."""
    drawn = draw_members(dates, split.times, settings)
    fields = split.target(variable, drawn.ravel())
    return fields.reshape(*drawn.shape, *fields.shape[1:])
