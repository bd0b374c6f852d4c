"""Baselines: the climatological ensemble and quantile mapping (xsdba) on small generated daily datasets."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from stride_contracts import (
    DatasetManifest,
    InputRef,
    ProducerRef,
    SamplerSettings,
    SamplesManifest,
    SplitRange,
    VariableRef,
)
from stride_contracts.checkpoint import TransformSet
from stride_contracts.dataset import GridInfo, SourceFile
from stride_core.artifacts import write_zarr_artifact
from stride_core.errors import ConfigError
from stride_eval.baselines import BaselineSettings, baseline_predictions
from stride_eval.baselines.climatology import climatological_ensemble
from stride_eval.baselines.quantile_mapping import UPSAMPLERS, quantile_mapped
from stride_eval.baselines.training import lineage_dataset, open_training_split


def write_daily_dataset(
    path: Path, target: np.ndarray, lr: np.ndarray, times: pd.DatetimeIndex, n_train: int, factor: int
) -> Path:
    """dataset.zarr with target/cond_dynamic 'pr' as given; the first `n_train` dates train, the rest test."""
    n_times, height, width = target.shape
    split = np.array([0] * n_train + [2] * (n_times - n_train), dtype=np.int8)
    dataset = xr.Dataset(
        {
            "target": (("time", "target_var", "y", "x"), target[:, None].astype(np.float32)),
            "cond_dynamic": (("time", "dynamic_var", "y_lr", "x_lr"), lr[:, None].astype(np.float32)),
            "cond_static": (("static_var", "y", "x"), np.zeros((1, height, width), np.float32)),
            "split": (("time",), split),
        },
        coords={
            "time": times,
            "target_var": np.array(["pr"], dtype=object),
            "dynamic_var": np.array(["pr"], dtype=object),
            "static_var": np.array(["lsm"], dtype=object),
            "lat": ("y", np.linspace(58, 50, height)),
            "lon": ("x", np.linspace(-10, 2, width)),
        },
    )
    manifest = DatasetManifest(
        producer=ProducerRef(tool="test", stride_version="0", created_utc=datetime.now(UTC)),
        target=[VariableRef(name="pr", units="mm day-1")],
        dynamic=[VariableRef(name="pr", units="mm day-1")],
        static=[VariableRef(name="lsm", units="1")],
        grid=GridInfo(
            hr_shape=(height, width),
            lr_shape=(height // factor, width // factor),
            factor=factor,
            lat_descending=True,
        ),
        splits={
            "train": SplitRange(start=times[0], end=times[n_train - 1]),
            "test": SplitRange(start=times[n_train], end=times[-1]),
        },
        time_step_hours=24.0,
        n_times=n_times,
        sources=[SourceFile(path="generated", size_bytes=0, sha256="0" * 64, variables=["pr"])],
    )
    write_zarr_artifact(dataset, manifest, path)
    return path


def samples_manifest_for(dataset: Path, factor: int, shape: tuple[int, int]) -> SamplesManifest:
    """A samples manifest whose lineage names `dataset` (what stride-generate records)."""
    return SamplesManifest(
        producer=ProducerRef(tool="test", stride_version="0", created_utc=datetime.now(UTC)),
        inputs=[InputRef(role="dataset", uri=dataset.resolve().as_uri(), contract="stride.dataset")],
        target=[VariableRef(name="pr", units="mm day-1")],
        dynamic=[VariableRef(name="pr", units="mm day-1")],
        static=[],
        grid=GridInfo(
            hr_shape=shape,
            lr_shape=(shape[0] // factor, shape[1] // factor),
            factor=factor,
            lat_descending=True,
        ),
        split="test",
        n_members=2,
        base_seed=0,
        sampler=SamplerSettings(),
        use_ema=True,
        model_kind="edm",
        checkpoint_step=0,
        transforms=TransformSet(target=[], dynamic=[], static=[]),
        has_target=True,
    )


@pytest.fixture(scope="module")
def labelled(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DatetimeIndex, int]:
    """Three daily years whose field on date i is the constant i: a member's value says which date it is."""
    times = pd.date_range("2001-01-01", "2003-12-31", freq="D")
    n_train = int(np.searchsorted(times, pd.Timestamp("2003-01-01")))
    values = np.arange(len(times), dtype=np.float32)[:, None, None] * np.ones((1, 4, 4), np.float32)
    path = write_daily_dataset(
        tmp_path_factory.mktemp("clim") / "dataset.zarr", values, values[:, :2, :2], times, n_train, 2
    )
    return path, times, n_train


def drawn_dates(members: np.ndarray, times: pd.DatetimeIndex) -> pd.DatetimeIndex:
    return times[members[..., 0, 0].astype(int).ravel()]


def test_climatology_draws_training_dates_of_the_same_month(
    labelled: tuple[Path, pd.DatetimeIndex, int],
) -> None:
    path, times, n_train = labelled
    evaluated = times[n_train:][::40]
    settings = BaselineSettings(members=16)
    split = open_training_split(path)
    members = climatological_ensemble(split, "pr", evaluated, settings)
    assert members.shape == (len(evaluated), 16, 4, 4)
    for i, stamp in enumerate(evaluated):
        dates = drawn_dates(members[i], times)
        assert (dates.month == stamp.month).all() and (dates < times[n_train]).all()
        assert len(set(dates)) == 16  # without replacement: 2 training Januaries hold 62 candidates
    again = climatological_ensemble(split, "pr", evaluated[::-1], settings)[::-1]
    np.testing.assert_array_equal(members, again)  # a date's members do not depend on the other dates
    other = climatological_ensemble(split, "pr", evaluated, settings.model_copy(update={"seed": 1}))
    assert not np.array_equal(members, other)


def test_climatology_day_window_wraps_round_the_year(labelled: tuple[Path, pd.DatetimeIndex, int]) -> None:
    path, times, _ = labelled
    stamp = pd.DatetimeIndex(["2003-01-03"])
    settings = BaselineSettings(members=40, season="window", window_days=5)
    members = climatological_ensemble(open_training_split(path), "pr", stamp, settings)
    dates = drawn_dates(members[0], times)
    # 11-day windows of two training years hold 2 x 11 - 2 = 20 dates (the first one starts 1 Jan 2001):
    # fewer than 40 members, so drawn with replacement, all within 5 days of 3 January (29 Dec .. 8 Jan).
    distance = np.minimum(np.abs(dates.day_of_year - 3), 365 - np.abs(dates.day_of_year - 3))
    assert distance.max() <= 5 and len(set(dates)) <= 20 and (dates.month == 12).any()


def test_lineage_dataset_missing_names_the_fix(tmp_path: Path) -> None:
    manifest = samples_manifest_for(tmp_path / "gone.zarr", 2, (4, 4))
    with pytest.raises(ConfigError, match=r"set baseline\.dataset"):
        lineage_dataset(manifest, None)
    assert lineage_dataset(manifest, tmp_path) == tmp_path
    unnamed = manifest.model_copy(update={"inputs": []})
    assert lineage_dataset(unnamed, None) is None
    assert (
        baseline_predictions(["climatology"], unnamed, "pr", pd.DatetimeIndex([]), None, BaselineSettings())
        == {}
    )


@pytest.fixture(scope="module")
def biased(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DatetimeIndex, int, np.ndarray]:
    """Gamma 'precipitation' whose LR input is a known monotone distortion of each cell's truth.

    The LR field is uniform in space on each date (so any interpolation of it is exact) and every HR cell is
    that date's driver times its own scale: per cell, the truth is a monotone function of the LR value.
    """
    rng = np.random.default_rng(3)
    times = pd.date_range("2001-01-01", "2004-12-31", freq="D")
    n_train = int(np.searchsorted(times, pd.Timestamp("2004-01-01")))
    driver = rng.gamma(0.8, 1.0, size=(len(times), 1, 1))
    truth = (driver * (1 + 2 * rng.random((1, 4, 4)))).astype(np.float32)
    lr = np.broadcast_to(0.5 * driver**1.3 + 0.2, (len(times), 2, 2))  # biased, too peaked
    path = write_daily_dataset(tmp_path_factory.mktemp("qm") / "dataset.zarr", truth, lr, times, n_train, 2)
    return path, times, n_train, truth


def test_quantile_mapping_removes_a_monotone_bias(
    biased: tuple[Path, pd.DatetimeIndex, int, np.ndarray],
) -> None:
    path, times, n_train, truth = biased
    manifest = samples_manifest_for(path, 2, (4, 4))
    split = open_training_split(path)
    lr_test = split.dataset["cond_dynamic"].values[n_train:, 0]
    settings = BaselineSettings(nquantiles=100)
    predictions = baseline_predictions(["qdm"], manifest, "pr", times[n_train:], lr_test, settings)
    corrected = predictions["qdm"].point
    raw = UPSAMPLERS["bicubic"](lr_test, 2)
    test_truth = truth[n_train:]
    raw_bias = float(np.mean(raw - test_truth))
    bias = float(np.mean(corrected - test_truth))
    assert abs(raw_bias) > 0.2 and abs(bias) < 0.1 * abs(raw_bias)
    # Rank-preserving: the mapped field equals the truth up to the quantile grid's resolution.
    assert float(np.median(np.abs(corrected - test_truth))) < 0.05
    assert (corrected >= 0).all()


def test_quantile_mapping_matches_training_quantiles_per_month(
    biased: tuple[Path, pd.DatetimeIndex, int, np.ndarray],
) -> None:
    """xsdba's documented behaviour: the corrected training field has the reference's quantiles per group."""
    path, times, n_train, truth = biased
    split = open_training_split(path)
    lr_train = split.lr("pr")
    assert lr_train is not None
    train_times = times[:n_train]
    corrected = quantile_mapped(
        split.target("pr"),
        lr_train,
        train_times,
        lr_train,
        train_times,
        2,
        BaselineSettings(),
        positive_definite=True,
    )
    levels = [0.1, 0.5, 0.9]
    for month in (1, 7):
        chosen = train_times.month == month
        expected = np.quantile(truth[:n_train][chosen, 0, 0], levels)
        np.testing.assert_allclose(
            np.quantile(corrected[chosen, 0, 0], levels), expected, rtol=0.05, atol=0.02
        )
