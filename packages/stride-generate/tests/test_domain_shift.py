"""Domain shift: inputs measured against the training statistics, with analytic expectations."""

from __future__ import annotations

import numpy as np
import pytest

from stride_contracts import StatsRow
from stride_generate.domain_shift import DomainShiftConfig, measure_shift


def _row(variable: str, mean: float, std: float, low: float, high: float) -> StatsRow:
    quantiles = np.linspace(low, high, 7)
    return StatsRow(
        role="dynamic",
        variable=variable,
        units="K",
        count=1000,
        valid_fraction=1.0,
        mean=mean,
        std=std,
        min=low,
        max=high,
        **{
            f"q{int(100 * q):02d}": float(v)
            for q, v in zip((0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99), quantiles, strict=True)
        },
    )


def test_inputs_like_training_raise_no_warning() -> None:
    rng = np.random.default_rng(0)
    # Uniform on [0, 1]: mean 1/2, std 1/sqrt(12); the inputs are a fresh draw of the same distribution.
    train = _row("t2m", 0.5, 1 / np.sqrt(12), 0.0, 1.0)
    inputs = rng.uniform(0, 1, size=(50, 1, 8, 8))
    report = measure_shift(inputs, ["t2m"], [train])
    assert report is not None
    (shift,) = report.shifts
    assert abs(shift.mean_sd) < 0.05
    assert shift.std_ratio == pytest.approx(1.0, abs=0.05)
    assert report.outside["t2m"] == 0.0
    assert report.warnings(DomainShiftConfig()) == []


def test_shifted_inputs_are_measured_and_warned_about() -> None:
    rng = np.random.default_rng(1)
    std = 1 / np.sqrt(12)
    train = _row("t2m", 0.5, std, 0.0, 1.0)
    # Shifted by half the range: the mean moves 0.5 / std = sqrt(3) SDs and half the cells leave [0, 1].
    inputs = rng.uniform(0.5, 1.5, size=(200, 1, 10, 10))
    report = measure_shift(inputs, ["t2m"], [train])
    assert report is not None
    (shift,) = report.shifts
    assert shift.mean_sd == pytest.approx(np.sqrt(3), rel=0.02)
    assert report.outside["t2m"] == pytest.approx(0.5, abs=0.01)
    assert shift.above_sd == pytest.approx(0.5 / std, rel=0.01)
    (line,) = report.warnings(DomainShiftConfig())
    assert "'t2m'" in line and "training SDs away" in line and "outside the training range" in line
    metrics = report.metrics()
    assert metrics["domain_shift.t2m.outside_fraction"] == report.outside["t2m"]


def test_spread_change_alone_is_warned_about() -> None:
    rng = np.random.default_rng(2)
    train = _row("psl", 0.0, 1.0, -6.0, 6.0)
    inputs = rng.normal(0.0, 2.0, size=(100, 1, 8, 8))
    report = measure_shift(inputs, ["psl"], [train])
    assert report is not None
    assert report.shifts[0].std_ratio == pytest.approx(2.0, rel=0.03)
    (line,) = report.warnings(DomainShiftConfig())
    assert "spread is 2.0" in line


def test_checkpoint_without_training_stats_gives_no_report() -> None:
    assert measure_shift(np.zeros((2, 1, 3, 3)), ["t2m"], []) is None
