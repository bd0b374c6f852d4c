"""Inline evaluation of a positive-definite target: wet frequencies, and a warning for a dry or flat ensemble."""

from __future__ import annotations

import numpy as np

from stride_train.inline_eval import degenerate_ensemble, occurrence_scores


def test_wet_frequencies_count_valid_cells_above_the_threshold() -> None:
    rng = np.random.default_rng(0)
    truth = np.where(rng.random((3, 10, 12)) < 0.2, rng.gamma(1.0, 2.0, (3, 10, 12)), 0.0)
    truth[:, :2] = np.nan  # missing cells count in neither frequency
    members = np.where(rng.random((3, 5, 10, 12)) < 0.3, 1.0, 0.0).astype(np.float32)
    members[:, :, :2] = 5.0  # wet, but on missing cells only
    scores = occurrence_scores("precip", members, truth.astype(np.float32), 0.1)
    valid = np.isfinite(truth)
    assert scores["inline.precip.wet_freq_truth"] == np.mean(truth[valid] > 0.1)
    assert scores["inline.precip.wet_freq"] == np.mean(members[:, :, 2:] > 0.1)
    assert occurrence_scores("precip", members, np.full((3, 10, 12), np.nan, np.float32), 0.1) == {}


def test_warns_when_every_member_is_dry_or_the_spread_is_zero() -> None:
    dry = np.zeros((2, 4, 6, 6), dtype=np.float32)
    dry[0, 1, 0, 0] = 0.05  # drizzle below the threshold is still dry
    warning = degenerate_ensemble("precip", dry, 0.1, step=250)
    assert warning is not None and "at step 250" in warning and "every precip member is dry" in warning
    flat = np.repeat(np.random.default_rng(1).random((2, 1, 6, 6), dtype=np.float32), 4, axis=1)
    warning = degenerate_ensemble("t2m", flat, None)
    assert warning is not None and "zero spread" in warning
    spread = flat.copy()
    spread[1, 2, 3, 3] += 1.0
    assert degenerate_ensemble("t2m", spread, None) is None
    assert degenerate_ensemble("precip", spread + 1.0, 0.1) is None
