from typing import get_args

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from pydantic import TypeAdapter

from stride_contracts.checkpoint import (
    BoxCoxSpec,
    LogZScoreSpec,
    MinMaxSpec,
    SqrtSpec,
    TransformSet,
    TransformSpec,
    VariableTransform,
    ZScoreSpec,
)
from stride_core.errors import ArtifactError, ConfigError
from stride_core.transforms import VariableTransforms, boxcox, build_transform, inv_boxcox, spec_from_stats
from stride_core.variables import TransformKind

examples = settings(max_examples=100, deadline=None, database=None)
finite = st.floats(-1e4, 1e4, allow_nan=False, width=32)
rates = st.one_of(st.just(0.0), st.floats(0, 500, allow_nan=False, width=32))
"""Precipitation-like values: exact zeros drawn often, then anything up to 500 mm/h."""
outputs = st.floats(-1e3, 1e3, allow_nan=False)
"""Anything a model may emit in transformed space."""
means = st.floats(-10, 10)
stds = st.floats(0.05, 10)
lambdas = st.one_of(st.just(0.0), st.floats(0, 2))

zscore_specs = st.builds(ZScoreSpec, mean=st.floats(-100, 100), std=st.floats(0.1, 100))
log_specs = st.builds(LogZScoreSpec, eps=st.floats(1e-4, 1.0), mean=means, std=stds)
boxcox_specs = st.builds(BoxCoxSpec, lmbda=lambdas, shift=st.floats(1e-3, 1.0), mean=means, std=stds)
sqrt_specs = st.builds(SqrtSpec, mean=means, std=stds)
minmax_specs = st.builds(
    lambda low, width: MinMaxSpec(min=low, max=low + width), st.floats(-1e3, 1e3), st.floats(0.1, 1e3)
)
positive_specs = st.one_of(log_specs, boxcox_specs, sqrt_specs)
any_spec = st.one_of(zscore_specs, minmax_specs, positive_specs)
SPEC_ADAPTER: TypeAdapter[TransformSpec] = TypeAdapter(TransformSpec)


@examples
@given(arrays(np.float64, (3, 4), elements=finite), st.one_of(zscore_specs, minmax_specs))
def test_unbounded_round_trip(x: np.ndarray, spec: TransformSpec) -> None:
    t = build_transform(spec)
    np.testing.assert_allclose(t.inverse(t.forward(x)), x, rtol=1e-9, atol=1e-9)


@examples
@given(arrays(np.float64, (3, 4), elements=rates), positive_specs)
def test_positive_round_trip_including_zeros(x: np.ndarray, spec: TransformSpec) -> None:
    t = build_transform(spec)
    y = t.forward(x)
    assert np.isfinite(y).all()
    np.testing.assert_allclose(t.inverse(y), x, rtol=1e-6, atol=1e-9)


@examples
@given(arrays(np.float64, (3, 4), elements=outputs), positive_specs)
def test_positive_inverse_never_negative(y: np.ndarray, spec: TransformSpec) -> None:
    x = build_transform(spec).inverse(y)
    assert not np.isnan(x).any() and (x >= 0).all()


@examples
@given(arrays(np.float64, 12, elements=outputs), any_spec)
def test_inverse_is_monotone_everywhere(y: np.ndarray, spec: TransformSpec) -> None:
    # Clipping must not fold outputs back (squaring a negative root would): larger outputs, larger amounts.
    x = build_transform(spec).inverse(np.sort(y))
    assert (x[1:] >= x[:-1]).all()


@examples
@given(arrays(np.float64, (3, 4), elements=rates), st.floats(1e-3, 1.0))
def test_boxcox_is_log_at_lambda_zero_and_continuous(x: np.ndarray, shift: float) -> None:
    u = x + shift
    np.testing.assert_array_equal(boxcox(u, 0.0), np.log(u))
    np.testing.assert_allclose(boxcox(u, 1e-12), np.log(u), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(inv_boxcox(boxcox(u, -1e-12), -1e-12), u, rtol=1e-9)
    np.testing.assert_allclose(inv_boxcox(boxcox(u, -0.7), -0.7), u, rtol=1e-6)  # the function allows < 0


def test_boxcox_inverse_outside_the_image() -> None:
    # lambda > 0: below -1/lambda lies under u = 0, which is x = 0 after the shift.
    t = build_transform(BoxCoxSpec(lmbda=0.5, shift=0.1, mean=0.0, std=1.0))
    np.testing.assert_array_equal(t.inverse(np.array([-2.0, -50.0])), [0.0, 0.0])
    # lambda < 0: at or above -1/lambda no finite amount maps there, hence lmbda >= 0 in the spec.
    assert inv_boxcox(np.array([2.0]), -0.5)[0] == np.inf


@examples
@given(any_spec)
def test_spec_json_round_trip_rebuilds_the_same_transform(spec: TransformSpec) -> None:
    restored = SPEC_ADAPTER.validate_json(SPEC_ADAPTER.dump_json(spec))
    assert restored == spec and type(restored) is type(spec)
    entry = VariableTransform(variable="v", transform=spec)
    assert VariableTransform.model_validate_json(entry.model_dump_json()) == entry
    x = np.array([0.0, 0.5, 3.0, 250.0])
    np.testing.assert_array_equal(build_transform(restored).forward(x), build_transform(spec).forward(x))


def test_transform_kinds_match_the_contract() -> None:
    spec_kinds = {model.model_fields["kind"].default for model in get_args(get_args(TransformSpec)[0])}
    assert set(get_args(TransformKind)) == spec_kinds


def test_specs_reject_invalid_parameters() -> None:
    with pytest.raises(ValueError, match="shift"):
        BoxCoxSpec(lmbda=0.3, shift=0.0, mean=0.0, std=1.0)
    with pytest.raises(ValueError, match="lmbda"):
        BoxCoxSpec(lmbda=float("nan"), shift=0.1, mean=0.0, std=1.0)
    with pytest.raises(ValueError, match="lmbda"):
        BoxCoxSpec(lmbda=-0.5, shift=0.1, mean=0.0, std=1.0)
    with pytest.raises(ValueError, match="std"):
        SqrtSpec(mean=0.0, std=0.0)


def test_minmax_maps_range_to_unit_interval() -> None:
    t = build_transform(MinMaxSpec(min=-2.0, max=6.0))
    np.testing.assert_allclose(t.forward(np.array([-2.0, 2.0, 6.0])), [0.0, 0.5, 1.0])


def test_channel_transforms_apply_per_channel_and_check_shape() -> None:
    spec = TransformSet(
        target=[
            VariableTransform(variable="a", transform=ZScoreSpec(mean=1, std=2)),
            VariableTransform(variable="b", transform=ZScoreSpec(mean=10, std=5)),
        ],
        dynamic=[VariableTransform(variable="a", transform=ZScoreSpec(mean=1, std=2))],
        static=[],
    )
    transforms = VariableTransforms(spec)
    x = np.stack([np.full((2, 2), 3.0), np.full((2, 2), 20.0)])[None]
    y = transforms.forward_target(x)
    np.testing.assert_allclose(y[0, :, 0, 0], [1.0, 2.0])
    np.testing.assert_allclose(transforms.inverse_target(y), x, rtol=1e-6)
    with pytest.raises(ValueError, match=r"expected 2 channels \['a', 'b'\]"):
        transforms.forward_target(np.zeros((1, 3, 2, 2)))


def test_channel_transforms_mix_kinds_in_float32() -> None:
    specs = [
        ZScoreSpec(mean=280, std=5),
        BoxCoxSpec(lmbda=0.2, shift=0.01, mean=-1, std=2),
        SqrtSpec(mean=1, std=1),
    ]
    entries = [VariableTransform(variable=f"v{i}", transform=s) for i, s in enumerate(specs)]
    transforms = VariableTransforms(TransformSet(target=entries, dynamic=entries, static=[]))
    x = np.stack([np.full((3, 3), 281.0), np.zeros((3, 3)), np.full((3, 3), 4.0)])[None].astype(np.float32)
    y = transforms.forward_target(x)
    assert y.dtype == np.float32
    np.testing.assert_allclose(transforms.inverse_target(y), x, rtol=1e-5, atol=1e-6)
    dynamic, static = transforms.inverse_conditioning(*transforms.forward_conditioning(x))
    np.testing.assert_allclose(dynamic, x, rtol=1e-5, atol=1e-6)
    assert static is None


STATS_ROW = {
    "role": "target",
    "variable": "p",
    "mean": 1.0,
    "std": 0.0,
    "min": 0.0,
    "max": 5.0,
    "log_mean": -2.0,
    "log_std": 1.5,
    "log_eps": 0.01,
    "boxcox_lambda": 0.25,
    "boxcox_shift": 0.01,
    "boxcox_mean": -1.2,
    "boxcox_std": 0.8,
    "sqrt_mean": 0.6,
    "sqrt_std": 0.0,
}
EXPECTED_SPECS: dict[str, TransformSpec] = {
    "zscore": ZScoreSpec(mean=1.0, std=1.0),  # std 0 becomes 1: centred, not divided by zero
    "log_zscore": LogZScoreSpec(eps=0.01, mean=-2.0, std=1.5),
    "boxcox": BoxCoxSpec(lmbda=0.25, shift=0.01, mean=-1.2, std=0.8),
    "sqrt": SqrtSpec(mean=0.6, std=1.0),
    "minmax": MinMaxSpec(min=0.0, max=5.0),
}


@pytest.mark.parametrize("kind", get_args(TransformKind))
def test_spec_from_stats_builds_every_kind(kind: str) -> None:
    spec = spec_from_stats(pd.DataFrame([STATS_ROW]), "target", "p", kind)
    assert spec == EXPECTED_SPECS[kind]
    assert spec.kind == kind


@pytest.mark.parametrize("kind", ["log_zscore", "boxcox", "sqrt"])
def test_spec_from_stats_needs_non_negative_stats(kind: str) -> None:
    non_negative_only = ("log_", "boxcox_", "sqrt_")
    signed = {k: None if k.startswith(non_negative_only) else v for k, v in STATS_ROW.items()}
    with pytest.raises(ConfigError, match=f"{kind} for 'p' needs .*choose zscore"):
        spec_from_stats(pd.DataFrame([signed]), "target", "p", kind)
    older = pd.DataFrame([{k: v for k, v in STATS_ROW.items() if not k.startswith(("boxcox_", "sqrt_"))}])
    if kind != "log_zscore":
        with pytest.raises(ConfigError, match="re-run stride-stats"):
            spec_from_stats(older, "target", "p", kind)


def test_spec_from_stats_errors() -> None:
    stats = pd.DataFrame([STATS_ROW])
    with pytest.raises(ArtifactError, match="no row for dynamic variable 'p'"):
        spec_from_stats(stats, "dynamic", "p", "zscore")
    with pytest.raises(ConfigError, match=r"unknown transform 'cube'.*known: zscore, log_zscore, boxcox"):
        spec_from_stats(stats, "target", "p", "cube")
