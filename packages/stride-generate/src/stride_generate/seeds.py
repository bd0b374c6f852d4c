"""Seeds that identify a member: derived from (base seed, the date's timestamp, member index) alone.

A member's seed does not depend on where its date sits in the run, so `max_dates`, `date_stride`, another
split, a date selection or a one-date rerun regenerate exactly the same member. The hash is SHA-256
(hashlib; Python's `hash` is salted per process) of a text key, truncated to 63 bits so that it fits the
int64 `seeds` array of samples.zarr and torch.Generator.manual_seed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

SEED_RULE = (
    "seed(t, k) = int.from_bytes(sha256(f'stride-member|{base_seed}|{date}|{k}').digest()[:8], 'big') "
    "& (2**63 - 1), with date the ISO timestamp YYYY-MM-DDTHH:MM:SS of the date in its own calendar"
)
"""The derivation rule, stored in samples.zarr's metadata so anyone can recompute a member's seed."""


def date_key(time: Any) -> str:
    """`YYYY-MM-DDTHH:MM:SS` of a timestamp in its own calendar.

    Works for pandas Timestamps, numpy datetime64, datetime and cftime dates alike (no conversion to a
    standard calendar, so 30 February of a 360-day calendar keeps its own key).
    """
    if isinstance(time, np.datetime64):
        time = pd.Timestamp(time)
    if not isinstance(time, datetime) and not all(
        hasattr(time, name) for name in ("year", "month", "day", "hour", "minute", "second")
    ):
        raise TypeError(f"not a timestamp: {time!r}")
    return (
        f"{time.year:04d}-{time.month:02d}-{time.day:02d}T{time.hour:02d}:{time.minute:02d}:{time.second:02d}"
    )


def member_seed(base_seed: int, time: Any, member: int) -> int:
    """The seed of member `member` of the date `time` (see SEED_RULE)."""
    key = f"stride-member|{base_seed}|{date_key(time)}|{member}".encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "big") & (2**63 - 1)


def seed_table(base_seed: int, times: Iterable[Any], members: int) -> list[list[int]]:
    """Seeds [date][member] of the given dates."""
    return [[member_seed(base_seed, time, k) for k in range(members)] for time in times]
