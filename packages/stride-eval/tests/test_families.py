import numpy as np
import pandas as pd
import pytest

from stride_eval.families import REGISTRY
from stride_eval.inputs import EvalInputs, Prediction


def inputs_for(members: np.ndarray, truth: np.ndarray) -> EvalInputs:
    times = pd.date_range("2020-01-01", periods=truth.shape[0], freq="h")
    prediction = Prediction(point=members.mean(axis=1), members=members, pmm=members.mean(axis=1))
    return EvalInputs(
        variable="t2m",
        units="K",
        times=times,
        truth=truth,
        predictions={"stride": prediction, "copy": Prediction(point=truth.copy())},
    )


def rows_by_key(inputs: EvalInputs) -> dict[tuple[str, str], float]:
    rows = [row for family in REGISTRY.values() for row in family(inputs)]
    return {(r.model, r.metric): r.value for r in rows if r.date is None and r.wavenumber is None}


def test_perfect_forecast_scores_zero_and_calibrated_ensemble_near_one() -> None:
    rng = np.random.default_rng(0)
    truth = rng.normal(size=(20, 16, 16)).astype(np.float32)
    members = rng.normal(size=(20, 10, 16, 16)).astype(np.float32)
    values = rows_by_key(inputs_for(members, truth))
    assert values[("copy", "crps")] == 0 and values[("copy", "rmse_mean")] == 0
    assert values[("copy", "spectrum_error")] == pytest.approx(0, abs=1e-9)
    assert values[("stride", "spread_skill")] == pytest.approx(1.0, abs=0.05)
    assert ("copy", "spread_skill") not in values  # deterministic: no spread


def test_per_date_rows_and_truth_spectrum() -> None:
    rng = np.random.default_rng(1)
    truth = rng.normal(size=(3, 8, 8)).astype(np.float32)
    rows = [
        row
        for family in REGISTRY.values()
        for row in family(inputs_for(rng.normal(size=(3, 2, 8, 8)), truth))
    ]
    assert sum(1 for r in rows if r.metric == "crps" and r.model == "stride" and r.date is not None) == 3
    assert any(r.model == "truth" and r.metric == "psd" for r in rows)


def test_headline_names_readers_use_stay_unique_without_date_and_wavenumber() -> None:
    # bench/quality.py and stride-plot take rows without date and wavenumber as the headline: the names
    # they read must not also appear with a threshold, scale or quantile (the pooled CRPS has its own name).
    rng = np.random.default_rng(2)
    truth = rng.gamma(0.5, 1.0, size=(6, 16, 16)).astype(np.float32)
    inputs = inputs_for(rng.gamma(0.5, 1.0, size=(6, 3, 16, 16)).astype(np.float32), truth)
    rows = [row for family in REGISTRY.values() if family.name != "occurrence" for row in family(inputs)]
    read = {"crps", "mae_mean", "rmse_mean", "bias_mean", "mae_pmm", "spread_skill", "spectrum_error"}
    counts: dict[tuple[str, str], int] = {}
    for r in rows:
        if r.metric in read and r.date is None and r.wavenumber is None:
            counts[(r.model, r.metric)] = counts.get((r.model, r.metric), 0) + 1
    assert counts and set(counts.values()) == {1}, counts


def test_every_family_runs_on_a_360_day_calendar() -> None:
    # A climate model's calendar: 30 February exists, and per-date rows carry it as its ISO label.
    import xarray as xr

    rng = np.random.default_rng(2)
    times = xr.date_range("2019-02-28", periods=4, freq="D", calendar="360_day", use_cftime=True)
    truth = rng.normal(size=(4, 8, 8)).astype(np.float32)
    members = rng.normal(size=(4, 3, 8, 8)).astype(np.float32)
    inputs = EvalInputs(
        variable="t2m",
        units="K",
        times=times,
        truth=truth,
        predictions={
            "stride": Prediction(point=members.mean(axis=1), members=members, pmm=members.mean(axis=1))
        },
    )
    rows = [row for family in REGISTRY.values() for row in family(inputs)]
    dates = {r.date for r in rows if r.metric == "crps" and r.date is not None}
    assert dates == {
        "2019-02-28T00:00:00",
        "2019-02-29T00:00:00",
        "2019-02-30T00:00:00",
        "2019-03-01T00:00:00",
    }
