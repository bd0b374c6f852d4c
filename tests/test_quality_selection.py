"""bench/quality.py's sampler-step rule: chosen from val scores alone.

The later-half spread-skill is checked against the formula written out in numpy (Fortin et al. 2014, an
independent implementation), the paired CRPS z against scipy's paired t statistic, and the rule on the
later-half val ratios that a recorded run of 2026-12-03 gave (computed from its val samples stores).
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
import pytest
from conftest import load_script
from scipy import stats

BENCH = Path(__file__).resolve().parents[1] / "bench" / "quality.py"


@pytest.fixture(scope="module")
def quality() -> ModuleType:
    return load_script(BENCH, "bench_quality")


DATES = pd.date_range("2019-03-22", periods=16, freq="6h").to_numpy()


def test_later_half_is_the_later_dates_in_time(quality: ModuleType) -> None:
    shuffled = DATES[[3, 15, 0, 9, 7, 12, 1, 8, 14, 2, 10, 5, 13, 4, 11, 6]]
    late = quality.later_half(shuffled)
    assert sorted(shuffled[late]) == list(DATES[8:])
    # an odd count keeps the middle date with the later half
    assert list(quality.later_half(DATES[:5])) == [2, 3, 4]


def test_later_spread_skill_against_the_formula(quality: ModuleType) -> None:
    rng = np.random.default_rng(3)
    t, m = len(DATES), 8
    truth = rng.normal(280, 2, (t, 6, 5))
    # the members' error grows with the date index (a bias their spread does not hold), as on the val dates
    bias = np.linspace(0.0, 2.0, t)[:, None, None, None]
    members = truth[:, None] + bias + rng.normal(0, 1, (t, m, 6, 5))
    truth[9, 2, 3] = np.nan  # an invalid point leaves both means
    order = rng.permutation(t)
    got = quality.later_spread_skill(members[order], truth[order], DATES[order])
    late_m, late_y = members[8:], truth[8:]
    valid = ~np.isnan(late_y)
    spread2 = late_m.var(axis=1, ddof=1)[valid].mean()
    mse = ((late_m.mean(axis=1) - late_y) ** 2)[valid].mean()
    assert got == pytest.approx(np.sqrt((m + 1) / m * spread2 / mse), rel=1e-12)
    every = ~np.isnan(truth)
    whole = np.sqrt(
        (m + 1)
        / m
        * members.var(axis=1, ddof=1)[every].mean()
        / ((members.mean(axis=1) - truth) ** 2)[every].mean()
    )
    assert got < 0.8 * whole  # not the ratio over all dates


def test_crps_excess_z_is_the_paired_t_statistic(quality: ModuleType) -> None:
    rng = np.random.default_rng(1)
    weather = rng.gamma(4.0, 0.04, len(DATES))
    per_date = {
        8: pd.Series(weather + rng.normal(0.003, 0.002, 16), index=DATES),
        11: pd.Series(weather + rng.normal(0, 0.002, 16), index=DATES),
    }
    z = quality.crps_excess_z(per_date)
    best, other = (8, 11) if per_date[8].mean() < per_date[11].mean() else (11, 8)
    t = stats.ttest_rel(per_date[other].to_numpy(), per_date[best].to_numpy()).statistic
    assert z[best] == 0.0
    assert z[other] == pytest.approx(float(t), rel=1e-12)
    assert z[other] > 0


@pytest.mark.parametrize(
    ("later", "expected"),
    [
        # ERA5-UK, the ERA5-only rerun of 2026-12-03 01:42 UTC at d5bdc84: later-half val ratios of its val
        # samples stores (all 16 selection dates: 1.152 / 0.890 / 0.807, from which the old rule took 11).
        ({8: 1.0764, 11: 0.8231, 14: 0.7454}, 8),
        # over-dispersed everywhere: the least spread
        ({8: 1.60, 11: 1.35, 14: 1.26}, 14),
        # equally far from 1: the more steps
        ({8: 1.1, 11: 0.9}, 11),
    ],
)
def test_rule_nearest_one_on_the_later_val_dates(
    quality: ModuleType, later: dict[int, float], expected: int
) -> None:
    assert quality.choose_steps(later) == expected
