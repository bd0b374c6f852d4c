"""Invalid truth pixels (radar outside coverage, sea in a land-only dataset) are masked in every family."""

import numpy as np
import pandas as pd
import pytest

from stride_core.metrics import probability_matched_mean, radial_power_spectrum, spectrum_error
from stride_eval.families import REGISTRY
from stride_eval.inputs import EvalInputs, Prediction, mask_prediction, masked_inputs


def half_nan_case() -> tuple[np.ndarray, np.ndarray]:
    """A field everywhere (what a model predicts) and the truth: the same field, NaN on the left half."""
    rng = np.random.default_rng(3)
    field = rng.gamma(0.6, 2.0, size=(6, 32, 32)).astype(np.float32)
    truth = field.copy()
    truth[:, :, :16] = np.nan
    return field, truth


def test_unmasked_perfect_prediction_had_a_spectrum_error() -> None:
    # The bug: the truth's spectrum fills its NaN half, the model's keeps it, so a perfect model is "wrong".
    field, truth = half_nan_case()
    _, truth_power = radial_power_spectrum(truth)
    _, model_power = radial_power_spectrum(field)
    assert spectrum_error(model_power, truth_power) > 0.05
    _, masked_power = radial_power_spectrum(field, valid=~np.isnan(truth))
    assert spectrum_error(masked_power, truth_power) == 0


def test_perfect_prediction_on_half_nan_domain_scores_zero_everywhere() -> None:
    field, truth = half_nan_case()
    members = np.repeat(field[:, None], 3, axis=1)  # every member perfect where the truth is valid
    inputs = masked_inputs(
        EvalInputs(
            variable="precip",
            units="mm h-1",
            times=pd.date_range("2020-01-01", periods=6, freq="D"),
            truth=truth,
            predictions={
                "perfect": Prediction(point=field, members=members, pmm=field),
                "point": Prediction(point=field),
            },
            positive_definite=True,
            thresholds=(0.5, 2.0),
            threshold_quantiles=(None, None),
        )
    )
    rows = [row for family in REGISTRY.values() for row in family(inputs)]
    by_key = {
        (r.model, r.metric, r.threshold, r.scale, r.quantile, r.lag): r.value
        for r in rows
        if r.date is None and r.bin is None
    }
    for model in ("perfect", "point"):
        assert by_key[(model, "spectrum_error", None, None, None, None)] == pytest.approx(0, abs=1e-12)
        assert by_key[(model, "ralsd", None, None, None, None)] == pytest.approx(0, abs=1e-9)
        for metric in ("crps", "rmse_mean", "mae_mean", "wasserstein", "wet_freq_error"):
            assert by_key[(model, metric, None, None, None, None)] == pytest.approx(0, abs=1e-6), (
                model,
                metric,
            )
        assert by_key[(model, "perkins", None, None, None, None)] == pytest.approx(1)
        assert by_key[(model, "fss", 0.5, 5.0, None, None)] == pytest.approx(1)
    assert by_key[("perfect", "rmse_pmm", None, None, None, None)] == pytest.approx(0, abs=1e-6)
    # Pooling 3 identical members moves numpy's interpolated quantile a little; a single field matches exactly.
    assert by_key[("point", "p99_error", None, None, None, None)] == pytest.approx(0, abs=1e-6)
    psd = {(r.model, r.wavenumber): r.value for r in rows if r.metric == "psd"}
    for (model, k), value in psd.items():
        assert value == pytest.approx(psd[("truth", k)], rel=1e-9), (model, k)


def test_pmm_pools_only_supervised_pixels() -> None:
    # Where the truth is invalid the members disagree wildly (+-1e3, mean 0): unmasked, their extremes enter
    # the pool and land on valid pixels; the masked PMM must equal the PMM of the valid half alone.
    field, truth = half_nan_case()
    members = np.stack([field, 1.5 * field + 0.1], axis=1)
    expected = probability_matched_mean(members[:, :, :, 16:], member_axis=1)
    members[:, 0, :, :16] = 1e3
    members[:, 1, :, :16] = -1e3
    stored = probability_matched_mean(members, member_axis=1)
    assert np.nanmax(stored[:, :, 16:]) == 1e3  # the bug: unsupervised values on supervised pixels
    masked = masked_inputs(
        EvalInputs(
            variable="precip",
            units="mm h-1",
            times=pd.date_range("2020-01-01", periods=6, freq="D"),
            truth=truth,
            predictions={"m": Prediction(point=members.mean(1), members=members, pmm=stored)},
        )
    )
    pmm = masked.predictions["m"].pmm
    assert pmm is not None
    assert np.isnan(pmm[:, :, :16]).all()
    np.testing.assert_allclose(pmm[:, :, 16:], expected, rtol=1e-6)


def test_static_validity_mask_masks_truth_and_predictions() -> None:
    field, _ = half_nan_case()
    land = np.zeros(field.shape[1:], dtype=bool)
    land[:, 20:] = True
    inputs = masked_inputs(
        EvalInputs(
            variable="t2m",
            units="K",
            times=pd.date_range("2020-01-01", periods=6, freq="D"),
            truth=field,
            predictions={"p": Prediction(point=field + 1)},
        ),
        land,
    )
    assert np.isnan(inputs.truth[:, :, :20]).all() and np.isfinite(inputs.truth[:, :, 20:]).all()
    assert np.isnan(inputs.predictions["p"].point[:, :, :20]).all()


def test_all_valid_truth_leaves_the_prediction_uncopied() -> None:
    rng = np.random.default_rng(7)
    members = rng.normal(size=(2, 3, 4, 4)).astype(np.float32)
    prediction = Prediction(point=members.mean(axis=1), members=members, pmm=members[:, 0])
    assert mask_prediction(prediction, np.ones((2, 4, 4), dtype=bool)) is prediction
    valid = np.ones((2, 4, 4), dtype=bool)
    valid[0, 0, 0] = False
    masked = mask_prediction(prediction, valid)
    assert masked.members is not None and np.isnan(masked.members[0, :, 0, 0]).all()
    assert np.isfinite(members).all()  # the input is not masked in place
