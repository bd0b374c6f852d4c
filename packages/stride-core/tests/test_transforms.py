import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from stride_contracts.checkpoint import LogZScoreSpec, MinMaxSpec, TransformSet, VariableTransform, ZScoreSpec
from stride_core.errors import ArtifactError, ConfigError
from stride_core.transforms import VariableTransforms, build_transform, spec_from_stats

finite = st.floats(-1e4, 1e4, allow_nan=False, width=32)
rates = st.one_of(st.just(0.0), st.floats(0, 500, allow_nan=False, width=32))


@settings(max_examples=50, deadline=None, database=None)
@given(arrays(np.float64, (3, 4), elements=finite), st.floats(-100, 100), st.floats(0.1, 100))
def test_zscore_round_trip(x: np.ndarray, mean: float, std: float) -> None:
    t = build_transform(ZScoreSpec(mean=mean, std=std))
    np.testing.assert_allclose(t.inverse(t.forward(x)), x, rtol=1e-9, atol=1e-9)


@settings(max_examples=50, deadline=None, database=None)
@given(arrays(np.float64, (3, 4), elements=rates), st.floats(1e-4, 1.0))
def test_log_zscore_round_trip_including_zeros(x: np.ndarray, eps: float) -> None:
    t = build_transform(LogZScoreSpec(eps=eps, mean=-1.0, std=2.0))
    np.testing.assert_allclose(t.inverse(t.forward(x)), x, rtol=1e-9, atol=1e-9)


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


def test_spec_from_stats() -> None:
    stats = pd.DataFrame(
        [
            {
                "role": "target",
                "variable": "p",
                "mean": 1.0,
                "std": 0.0,
                "min": 0.0,
                "max": 5.0,
                "log_mean": -2.0,
                "log_std": 1.5,
                "log_eps": 0.01,
            }
        ]
    )
    assert spec_from_stats(stats, "target", "p", "zscore") == ZScoreSpec(mean=1.0, std=1.0)
    assert spec_from_stats(stats, "target", "p", "log_zscore") == LogZScoreSpec(eps=0.01, mean=-2.0, std=1.5)
    with pytest.raises(ArtifactError, match="no row for dynamic variable 'p'"):
        spec_from_stats(stats, "dynamic", "p", "zscore")
    with pytest.raises(ConfigError, match="unknown transform"):
        spec_from_stats(stats, "target", "p", "boxcox")
