"""Tests for the fair CRPS and the spread-skill ratio."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from numpy.typing import NDArray

from stride_core.metrics import crps_ensemble_fair, probabilistic, spread_skill_ratio


def crps_fair_brute_force(members: NDArray[np.float64], truth: NDArray[np.float64]) -> NDArray[np.float64]:
    """The O(m^2) definition, members on axis 0."""
    m = members.shape[0]
    skill = np.mean(np.abs(members - truth), axis=0)
    pairs = np.abs(members[:, None] - members[None, :]).sum(axis=(0, 1))
    return skill - pairs / (2 * m * (m - 1))


finite = st.floats(min_value=-1e3, max_value=1e3, allow_nan=False, allow_infinity=False)


@settings(max_examples=60, deadline=None, database=None)
@given(
    data=st.data(),
    m=st.integers(min_value=2, max_value=12),
    points=st.integers(min_value=1, max_value=6),
)
def test_crps_fair_matches_brute_force(data: st.DataObject, m: int, points: int) -> None:
    members = data.draw(arrays(np.float64, (m, points), elements=finite))
    truth = data.draw(arrays(np.float64, (points,), elements=finite))
    expected = crps_fair_brute_force(members, truth)
    np.testing.assert_allclose(crps_ensemble_fair(members, truth, member_axis=0), expected, atol=1e-8)


def test_crps_fair_member_axis_anywhere() -> None:
    rng = np.random.default_rng(1)
    members = rng.normal(size=(7, 4, 5))
    truth = rng.normal(size=(4, 5))
    expected = crps_fair_brute_force(members, truth)
    last = np.moveaxis(members, 0, -1)
    np.testing.assert_allclose(crps_ensemble_fair(last, truth, member_axis=-1), expected, atol=1e-12)
    middle = np.moveaxis(members, 0, 1)
    np.testing.assert_allclose(crps_ensemble_fair(middle, truth, member_axis=1), expected, atol=1e-12)


def test_crps_single_member_is_absolute_error() -> None:
    rng = np.random.default_rng(2)
    member = rng.normal(size=(1, 3, 4))
    truth = rng.normal(size=(3, 4))
    crps = crps_ensemble_fair(member, truth, member_axis=0)
    np.testing.assert_allclose(crps, np.abs(member[0] - truth))
    assert crps.mean() == pytest.approx(np.mean(np.abs(member[0] - truth)))


def test_crps_fair_is_unbiased_across_ensemble_sizes() -> None:
    # For members and truth from N(0, 1) the expected CRPS is 1/sqrt(pi) whatever m is.
    rng = np.random.default_rng(3)
    truth = rng.normal(size=40_000)
    for m in (2, 5, 20):
        members = rng.normal(size=(m, truth.size))
        assert crps_ensemble_fair(members, truth, member_axis=0).mean() == pytest.approx(
            1 / math.sqrt(math.pi), rel=0.02
        )


def test_crps_fair_prefers_the_calibrated_ensemble() -> None:
    rng = np.random.default_rng(4)
    truth = rng.normal(size=20_000)
    calibrated = rng.normal(size=(10, truth.size))
    biased = calibrated + 0.5
    narrow = 0.3 * calibrated
    score = {
        name: crps_ensemble_fair(ens, truth, member_axis=0).mean()
        for name, ens in (("calibrated", calibrated), ("biased", biased), ("narrow", narrow))
    }
    assert score["calibrated"] < score["biased"]
    assert score["calibrated"] < score["narrow"]


@pytest.mark.parametrize("m", [16, 17, 33])
def test_crps_fair_in_blocks_of_float32_matches_brute_force(m: int, monkeypatch: pytest.MonkeyPatch) -> None:
    # Blocks smaller than one date and straddling dates; float32 members sorted exactly, summed in float64.
    monkeypatch.setattr(probabilistic, "CRPS_BLOCK_POINTS", 7)
    rng = np.random.default_rng(m)
    truth = (280 + rng.normal(size=(3, 5, 4))).astype(np.float32)
    members = (truth[:, None] + rng.normal(size=(3, m, 5, 4))).astype(np.float32)
    members[1, 3, 2, 1] = np.nan
    expected = crps_fair_brute_force(np.moveaxis(members, 1, 0).astype(np.float64), truth.astype(np.float64))
    got = crps_ensemble_fair(members, truth, member_axis=1)
    assert got.dtype == np.float64
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
    assert np.isnan(got[1, 2, 1]) and np.isnan(got).sum() == 1
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    scalar = crps_ensemble_fair(members[0, :, 0, 0], truth[0, 0, 0], member_axis=0)
    np.testing.assert_allclose(scalar, expected[0, 0, 0], rtol=1e-12)


def test_crps_nan_truth_gives_nan_only_there() -> None:
    members = np.ones((3, 2, 2))
    truth = np.array([[0.0, np.nan], [1.0, 2.0]])
    crps = crps_ensemble_fair(members, truth, member_axis=0)
    assert np.isnan(crps[0, 1])
    assert np.isfinite(np.delete(crps.ravel(), 1)).all()


def test_crps_shape_error_prints_both_shapes() -> None:
    with pytest.raises(ValueError, match=r"\(3, 4, 5\).*\(4, 6\)"):
        crps_ensemble_fair(np.zeros((3, 4, 5)), np.zeros((4, 6)), member_axis=0)


def test_spread_skill_is_one_when_calibrated() -> None:
    rng = np.random.default_rng(5)
    # Truth and members share the predictable part mu and the same conditional spread.
    mu = rng.normal(size=(50, 400))
    truth = mu + rng.normal(size=mu.shape)
    for m in (3, 10):
        members = mu + rng.normal(size=(m, *mu.shape))
        assert spread_skill_ratio(members, truth, member_axis=0) == pytest.approx(1.0, abs=0.03)


def test_spread_skill_below_one_when_under_dispersive() -> None:
    rng = np.random.default_rng(6)
    mu = rng.normal(size=(50, 400))
    truth = mu + rng.normal(size=mu.shape)
    members = mu + 0.5 * rng.normal(size=(8, *mu.shape))
    ratio = spread_skill_ratio(members, truth, member_axis=0)
    assert isinstance(ratio, float)
    assert ratio == pytest.approx(0.5, abs=0.05)


def test_spread_skill_reduce_axes_and_nan_truth() -> None:
    rng = np.random.default_rng(7)
    members = rng.normal(size=(2, 5, 3, 4))
    truth = rng.normal(size=(3, 5, 4))  # members [t, m, y, x] vs truth [y, t, x]: not aligned
    with pytest.raises(ValueError, match=r"\(2, 5, 3, 4\).*\(3, 5, 4\)"):
        spread_skill_ratio(members, truth, member_axis=1)

    truth = rng.normal(size=(2, 3, 4))
    truth[1] = np.nan
    per_time = spread_skill_ratio(members, truth, member_axis=1, reduce_axes=(-2, -1))
    assert isinstance(per_time, np.ndarray)
    assert per_time.shape == (2,)
    assert np.isfinite(per_time[0]) and np.isnan(per_time[1])
    overall = spread_skill_ratio(members, truth, member_axis=1)
    assert overall == pytest.approx(float(per_time[0]))


def test_spread_skill_needs_two_members() -> None:
    with pytest.raises(ValueError, match="at least 2 members"):
        spread_skill_ratio(np.zeros((1, 4)), np.zeros(4), member_axis=0)


@pytest.mark.parametrize("m", [2, 5, 16])
def test_crps_fair_compiled_kernel_equals_numpy_network(m: int, monkeypatch: pytest.MonkeyPatch) -> None:
    # float32 ensembles of 2..KERNEL_MAX_MEMBERS members take the compiled kernel; the numpy network is
    # the other path (forced here by an empty kernel range). Both against the float64 brute force too.
    rng = np.random.default_rng(100 + m)
    truth = rng.gamma(0.5, 2.0, size=(4, 6, 5)).astype(np.float32)
    truth[truth < 0.3] = 0.0  # ties at zero, as in precipitation
    members = np.maximum(truth[:, None] + rng.normal(size=(4, m, 6, 5)), 0).astype(np.float32)
    members[2, m - 1, 1, 1] = np.nan
    truth[3, 0, 4] = np.nan
    compiled = crps_ensemble_fair(members, truth, member_axis=1)
    monkeypatch.setattr(probabilistic._crps_kernel, "KERNEL_MAX_MEMBERS", 0)
    network = crps_ensemble_fair(members, truth, member_axis=1)
    expected = crps_fair_brute_force(np.moveaxis(members, 1, 0).astype(np.float64), truth.astype(np.float64))
    np.testing.assert_array_equal(np.isnan(compiled), np.isnan(expected))
    assert np.isnan(compiled).sum() == 2
    np.testing.assert_allclose(compiled, expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(compiled, network, rtol=1e-12, atol=1e-12)


def test_crps_fair_without_numba_takes_the_numpy_network(monkeypatch: pytest.MonkeyPatch) -> None:
    # numba is stride-core's optional `fast` extra: where it is not installed (the data, generate, plot and
    # train images) no kernel is asked for and the scores still equal the brute force.
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "numba" else real_find_spec(name, *a)
    )
    probabilistic._crps_kernel.numba_available.cache_clear()
    try:
        assert probabilistic._crps_kernel.crps_fair_kernel(8, probabilistic._sorting_network(8)) is None
        rng = np.random.default_rng(7)
        truth = rng.gamma(0.5, 2.0, size=(3, 9)).astype(np.float32)
        members = (truth[:, None] + rng.normal(size=(3, 8, 9))).astype(np.float32)
        scores = crps_ensemble_fair(members, truth, member_axis=1)
        expected = crps_fair_brute_force(
            np.moveaxis(members, 1, 0).astype(np.float64), truth.astype(np.float64)
        )
        np.testing.assert_allclose(scores, expected, rtol=1e-12, atol=1e-12)
    finally:
        monkeypatch.undo()
        probabilistic._crps_kernel.numba_available.cache_clear()
    assert probabilistic._crps_kernel.numba_available() == (real_find_spec("numba") is not None)


def test_crps_fair_kernel_source_is_cached_on_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STRIDE_KERNEL_CACHE", str(tmp_path))
    network = probabilistic._sorting_network(3)
    module = probabilistic._crps_kernel._load_cached(probabilistic._crps_kernel.kernel_source(3, network), 3)
    out = np.empty(2)
    module.kernel(np.array([[1, 0], [3, 0], [2, 0]], np.float32), np.array([0, 0], np.float32), out)
    # m = 3 at y = 0: mean |x - y| = 2, spread sum_{i != j} |x_i - x_j| / (2 m (m - 1)) = 8 / 12.
    np.testing.assert_allclose(out, [2 - 8 / 12, 0.0])
    assert (tmp_path / "stride_crps_fair_m3_v3.py").exists()


def test_crps_fair_kernel_without_a_writable_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("")
    monkeypatch.setenv("STRIDE_KERNEL_CACHE", str(blocked / "kernels"))  # under a file: mkdir fails
    kernel = probabilistic._crps_kernel._compiled.__wrapped__(2, probabilistic._sorting_network(2))
    out = np.empty(1)
    kernel(np.array([[0], [2]], np.float32), np.array([1], np.float32), out)
    np.testing.assert_allclose(out, [1 - 2 / 2])  # mean |x - y| = 1, spread 2 * 2 / (2 * 2 * 1)
