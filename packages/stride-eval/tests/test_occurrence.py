import numpy as np
import pandas as pd
import pytest

from stride_eval.families import REGISTRY, occurrence
from stride_eval.inputs import EvalInputs, Prediction

NAN = np.nan


def precip_inputs(truth: np.ndarray, predictions: dict[str, Prediction], **kwargs: object) -> EvalInputs:
    return EvalInputs(
        variable="precip",
        units="mm h-1",
        times=pd.date_range("2020-01-01", periods=truth.shape[0], freq="h"),
        truth=truth,
        predictions=predictions,
        **{"positive_definite": True, "wet_threshold": 0.1, **kwargs},  # type: ignore[arg-type]
    )


def values(inputs: EvalInputs) -> dict[tuple[str, str], float]:
    return {(r.model, r.metric): r.value for r in occurrence.compute(inputs)}


def test_wet_frequency_and_p99_by_hand() -> None:
    # One date, 2 x 2 pixels. Wet means strictly above 0.1, so the 0.1 of the bicubic field is dry.
    truth = np.array([[[0.0, 0.05], [0.2, 1.0]]], dtype=np.float32)
    bicubic = np.array([[[0.1, 0.3], [0.3, 0.4]]], dtype=np.float32)
    # Two members: pooled values 0, 0, 0, 2 | 0, 0, 0.5, 0.5 -> 3 of 8 wet.
    members = np.array([[[[0.0, 0.0], [0.0, 2.0]], [[0.0, 0.0], [0.5, 0.5]]]], dtype=np.float32)
    got = values(
        precip_inputs(
            truth,
            {
                "bicubic": Prediction(point=bicubic),
                "stride": Prediction(point=members.mean(1), members=members),
            },
        )
    )
    assert got[("truth", "wet_freq")] == pytest.approx(2 / 4)
    assert got[("bicubic", "wet_freq")] == pytest.approx(3 / 4)
    assert got[("bicubic", "wet_freq_error")] == pytest.approx(1 / 4)
    assert got[("stride", "wet_freq")] == pytest.approx(3 / 8)
    assert got[("stride", "wet_freq_error")] == pytest.approx(1 / 8)
    # p99 of 4 sorted values a0..a3 sits at position 0.99 * 3 = 2.97: a2 + 0.97 (a3 - a2).
    assert got[("truth", "p99")] == pytest.approx(0.2 + 0.97 * 0.8, rel=1e-6)
    assert got[("bicubic", "p99")] == pytest.approx(0.3 + 0.97 * 0.1, rel=1e-6)
    # 8 pooled member values 0,0,0,0,0,0.5,0.5,2: position 0.99 * 7 = 6.93 -> 0.5 + 0.93 * 1.5.
    assert got[("stride", "p99")] == pytest.approx(0.5 + 0.93 * 1.5, rel=1e-6)
    assert got[("stride", "p99_error")] == pytest.approx(abs(0.5 + 0.93 * 1.5 - (0.2 + 0.97 * 0.8)), rel=1e-6)


def test_invalid_truth_pixels_are_left_out_of_model_and_truth() -> None:
    # The NaN pixel's huge forecast must not count; 1 of the 3 valid truth pixels is wet.
    truth = np.array([[[0.0, NAN], [0.0, 3.0]]], dtype=np.float32)
    forecast = np.array([[[0.0, 99.0], [0.5, 0.0]]], dtype=np.float32)
    got = values(precip_inputs(truth, {"regression": Prediction(point=forecast)}))
    assert got[("truth", "wet_freq")] == pytest.approx(1 / 3)
    assert got[("regression", "wet_freq")] == pytest.approx(1 / 3)
    assert got[("regression", "wet_freq_error")] == 0
    assert got[("regression", "p99")] == pytest.approx(0.0 + 0.98 * 0.5, rel=1e-6)  # position 1.98 of 0,0,0.5


def test_threshold_comes_from_the_inputs_and_units_are_set() -> None:
    truth = np.array([[[0.0, 0.3], [0.6, 1.0]]], dtype=np.float32)
    rows = occurrence.compute(precip_inputs(truth, {}, wet_threshold=0.5))
    by_metric = {r.metric: r for r in rows}
    assert by_metric["wet_freq"].value == pytest.approx(0.5)
    assert by_metric["wet_freq"].units == "1" and by_metric["p99"].units == "mm h-1"
    assert {r.family for r in rows} == {"occurrence"}


def test_not_positive_definite_gives_no_rows() -> None:
    truth = np.ones((2, 4, 4), dtype=np.float32)
    inputs = precip_inputs(truth, {"bicubic": Prediction(point=truth)}, positive_definite=False)
    assert REGISTRY["occurrence"](inputs) == []
