"""The intensity bound: members never exceed the documented multiple of the training range, and say how often."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from stride_contracts import StatsRow
from stride_contracts.checkpoint import LogZScoreSpec, TransformSet, VariableTransform
from stride_core.transforms import VariableTransforms
from stride_generate.bounds import IntensityBound, IntensityBoundConfig


def _row(variable: str, low: float, high: float) -> StatsRow:
    quantiles = dict.fromkeys(("q01", "q05", "q25", "q50", "q75", "q95", "q99"), (low + high) / 2)
    return StatsRow(
        role="target",
        variable=variable,
        units="1",
        count=10,
        valid_fraction=1.0,
        mean=(low + high) / 2,
        std=1.0,
        min=low,
        max=high,
        **quantiles,
    )


def test_the_exponential_runaway_of_a_log_inverse_is_clipped_at_twice_the_training_maximum() -> None:
    # A log-z-scored precipitation trained on 0..30 mm/h: a member 6 transformed units above the training
    # maximum's comes out at tens of thousands of mm/h after the inverse.
    spec = LogZScoreSpec(eps=0.01, mean=-2.0, std=1.5)
    transforms = VariableTransforms(
        TransformSet(target=[VariableTransform(variable="precip", transform=spec)], dynamic=[], static=[])
    )
    top = (np.log(30.0 + 0.01) - spec.mean) / spec.std
    transformed = np.zeros((2, 4, 1, 8, 8), dtype=np.float32)
    transformed[0, 1, 0, 0, :5] = top + 6  # 5 runaway values of 512
    members = transforms.inverse_target(transformed)
    assert members.max() > 10_000
    bound = IntensityBound.from_stats(["precip"], [_row("precip", 0.0, 30.0)], 2.0)
    assert bound is not None
    clipped = bound.apply(members)
    assert clipped.max() == pytest.approx(60.0)
    np.testing.assert_array_equal(clipped[members <= 60.0], members[members <= 60.0])  # the rest untouched
    assert bound.shares()["precip"] == (0.0, 5 / 512)
    assert bound.metrics() == {"bound.precip.share_low": 0.0, "bound.precip.share_high": 5 / 512}


def test_a_signed_variable_is_bounded_on_both_sides_per_channel(caplog: pytest.LogCaptureFixture) -> None:
    rows = [_row("precip", 0.0, 10.0), _row("t2m", 260.0, 290.0)]
    bound = IntensityBound.from_stats(["precip", "t2m"], rows, 1.5)
    assert bound is not None
    assert [(b.low, b.high) for b in bound.bounds] == [(0.0, 15.0), (245.0, 305.0)]
    members = np.array([[-0.5, 3.0, 20.0, 14.0], [200.0, 270.0, 300.0, 400.0]], dtype=np.float32)
    members = members.reshape(1, 1, 2, 4, 1)  # [dates, M, C, H, W]
    clipped = bound.apply(members)
    np.testing.assert_array_equal(clipped[0, 0, 0, :, 0], [0.0, 3.0, 15.0, 14.0])
    np.testing.assert_array_equal(clipped[0, 0, 1, :, 0], [245.0, 270.0, 300.0, 305.0])
    assert bound.shares() == {"precip": (0.25, 0.25), "t2m": (0.25, 0.25)}
    with caplog.at_level(logging.INFO):
        bound.log(logging.getLogger("test-bounds"))
    assert "intensity bound precip: [0, 15]; clipped 25.0000% of values above" in caplog.text
    with pytest.raises(ValueError, match="expected members"):
        bound.apply(members[:, :, :1])


def test_no_bound_when_off_or_without_training_stats() -> None:
    assert IntensityBound.from_stats(["precip"], [_row("precip", 0.0, 1.0)], None) is None
    assert IntensityBound.from_stats(["precip"], [], 2.0) is None  # an old checkpoint without stats
    assert IntensityBoundConfig().multiple == 2.0
    with pytest.raises(ValueError):
        IntensityBoundConfig(multiple=0.5)
