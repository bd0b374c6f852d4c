"""The adapter: contract-A samples from dataset.zarr, lazy == in-memory, deterministic batches for any workers."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import xarray as xr
import zarr

from stride_contracts import FeatureSpec
from stride_contracts.checkpoint import LogZScoreSpec, TransformSet, VariableTransform, ZScoreSpec
from stride_core.errors import ArtifactError, ConfigError
from stride_core.patches import RainWeighting
from stride_core.testing import write_synthetic_dataset
from stride_core.transforms import VariableTransforms
from stride_model.adapter import (
    DownscalingDataset,
    FixedKeySampler,
    StepBatchSampler,
    batch_to,
    collate_samples,
    make_loader,
)

FEATURES = FeatureSpec(temporal_steps=3, time_features=("doy", "hour"), context_margin=1)
PATCH = (8, 12)  # HR; the synthetic store is 16x24 HR, 4x6 LR (factor 4)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("adapter") / "dataset.zarr"
    write_synthetic_dataset(path, n_times=48, nan_fraction=0.2)
    return path


def transforms() -> VariableTransforms:
    def entry(name: str, spec: Any) -> VariableTransform:
        return VariableTransform(variable=name, transform=spec)

    return VariableTransforms(
        TransformSet(
            target=[entry("t2m", LogZScoreSpec(eps=1.0, mean=5.6, std=0.02))],
            dynamic=[entry("t2m", ZScoreSpec(mean=280.0, std=3.0))],
            static=[
                entry("orography", ZScoreSpec(mean=100.0, std=80.0)),
                entry("lsm", ZScoreSpec(mean=0.5, std=0.5)),
            ],
        )
    )


def dataset(store: Path, **options: Any) -> DownscalingDataset:
    settings: dict[str, Any] = {"patch_shape": PATCH, "seed": 7, "wet_threshold": 280.0}
    settings.update(options)
    split = settings.pop("split", "train")
    features = settings.pop("features", FEATURES)
    return DownscalingDataset(store, split, transforms(), features, **settings)


def assert_same(a: Any, b: Any) -> None:
    """Exact equality of nested samples/batches (tensors bit for bit)."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    elif isinstance(a, dict):
        assert a.keys() == b.keys()
        for key in a:
            assert_same(a[key], b[key])
    else:
        assert a == b


def test_sample_is_contract_a_with_the_store_values(store: Path) -> None:
    data = dataset(store)
    sample = data[(5, 11)]
    shapes = {
        "target": ((1, 8, 12), torch.float32),
        "mask": ((1, 8, 12), torch.bool),
        "wet": ((1, 8, 12), torch.float32),
        "cond_dynamic": ((3, 1, 2, 3), torch.float32),
        "cond_static": ((2, 8, 12), torch.float32),
        "cond_context": ((3, 4, 5), torch.float32),
        "time_features": ((4,), torch.float32),
        "var_label": ((1,), torch.int64),
    }
    for name, (shape, dtype) in shapes.items():
        assert tuple(sample[name].shape) == shape and sample[name].dtype == dtype, name
    coord = sample["cond_coord"]
    anchor = int(coord["time_index"])
    (lr_row, lr_col), (hr_row, hr_col) = coord["lr_origin"].tolist(), coord["hr_origin"].tolist()
    assert (hr_row, hr_col) == (4 * lr_row, 4 * lr_col)
    assert coord["context_origin"].tolist() == [lr_row - 1, lr_col - 1]
    assert anchor == data.windows.anchors[5] and sample["meta"]["key"] == (5, 11)

    # Reference values read independently through xarray.
    ds = xr.open_zarr(store)
    assert sample["meta"]["timestamp"] == str(np.datetime_as_string(ds["time"].values[anchor], unit="s"))
    physical = ds["target"].values[anchor, :, hr_row : hr_row + 8, hr_col : hr_col + 12]
    valid = np.isfinite(physical)
    assert (~valid).any() and valid.any()
    np.testing.assert_array_equal(sample["mask"].numpy(), valid)
    expected = (np.log(physical + 1.0) - 5.6) / 0.02
    np.testing.assert_allclose(sample["target"].numpy()[valid], expected[valid], rtol=1e-5)
    assert (sample["target"].numpy()[~valid] == 0).all()
    np.testing.assert_array_equal(sample["wet"].numpy(), (np.nan_to_num(physical) > 280.0).astype(np.float32))
    steps = data.windows.steps[5]
    lr = ds["cond_dynamic"].values[steps][:, :, lr_row : lr_row + 2, lr_col : lr_col + 3]
    np.testing.assert_allclose(sample["cond_dynamic"].numpy(), (lr - 280.0) / 3.0, rtol=1e-6)
    static = ds["cond_static"].values[:, hr_row : hr_row + 8, hr_col : hr_col + 12]
    np.testing.assert_allclose(sample["cond_static"].numpy()[1], (static[1] - 0.5) / 0.5, rtol=1e-6)
    assert sample["var_label"].tolist() == [0]


def test_context_is_zero_outside_the_domain_and_the_lr_field_inside(store: Path) -> None:
    data = dataset(store, features=FeatureSpec(temporal_steps=2, temporal_mode="past", context_margin=2))
    ds = xr.open_zarr(store)
    seen_outside = False
    for draw in range(12):
        sample = data[(9, draw)]
        context = sample["cond_context"].numpy().reshape(2, 1, 6, 7)  # [T, C, 2 + 4, 3 + 4]
        row, col = sample["cond_coord"]["context_origin"].tolist()
        steps = data.windows.steps[9]
        padded = np.full((2, 1, 4 + 8, 6 + 8), np.nan, np.float32)  # LR 4x6 with a ring of 4 outside
        padded[:, :, 4:8, 4:10] = (ds["cond_dynamic"].values[steps] - 280.0) / 3.0
        reference = padded[:, :, row + 4 : row + 4 + 6, col + 4 : col + 4 + 7]
        outside = np.isnan(reference)
        seen_outside |= bool(outside.any())
        assert (context[outside] == 0).all()
        np.testing.assert_allclose(context[~outside], reference[~outside], rtol=1e-6)
        np.testing.assert_array_equal(sample["cond_dynamic"].numpy(), context[:, :, 2:4, 2:5])
    assert seen_outside


def test_lazy_and_in_memory_samples_are_identical(store: Path) -> None:
    options: dict[str, Any] = {"rain_weighting": RainWeighting(variable="t2m", threshold=281.0, floor=0.2)}
    for split, features in (
        ("train", FEATURES),
        ("val", FeatureSpec(temporal_steps=4, temporal_edge="drop")),
    ):
        lazy = dataset(store, split=split, features=features, **options)
        memory = dataset(store, split=split, features=features, in_memory=True, **options)
        assert len(lazy) == len(memory) > 0
        for key in [(i, d) for i in range(len(lazy)) for d in (0, 3)]:
            assert_same(lazy[key], memory[key])
    whole = dataset(store, patch_shape=None)
    whole_memory = dataset(store, patch_shape=None, in_memory=True)
    assert_same(whole[4], whole_memory[(4, 0)])
    full = whole[4]
    assert tuple(full["target"].shape) == (1, 16, 24) and full["cond_coord"]["hr_origin"].tolist() == [0, 0]


def test_step_sampler_is_a_function_of_seed_and_step() -> None:
    full = list(StepBatchSampler(100, 8, 6, seed=3))
    assert len(full) == 6 and all(len(batch) == 8 for batch in full)
    assert [key[1] for key in full[2]] == list(range(16, 24))  # draw = step * batch_size + slot
    assert list(StepBatchSampler(100, 8, 6, seed=3, start_step=4)) == full[4:]
    assert list(StepBatchSampler(100, 8, 6, seed=4)) != full
    shares = [list(StepBatchSampler(100, 8, 6, seed=3, rank=r, world_size=4)) for r in range(4)]
    for step in range(6):
        assert [key for r in range(4) for key in shares[r][step]] == full[step]
    with pytest.raises(ConfigError, match="multiple of the world size 3"):
        StepBatchSampler(100, 8, 6, seed=3, world_size=3)


def test_fixed_key_sampler_batches_a_list_of_keys() -> None:
    sampler = FixedKeySampler(range(5), batch_size=2)
    assert list(sampler) == [[(0, 0), (1, 0)], [(2, 0), (3, 0)], [(4, 0)]] and len(sampler) == 3
    ranks = [list(FixedKeySampler([(i, 9) for i in range(5)], 4, rank=r, world_size=2)) for r in range(2)]
    assert ranks == [[[(0, 9), (1, 9)]], [[(2, 9), (3, 9), (4, 9)]]]


def test_batches_are_identical_with_zero_and_two_workers(store: Path) -> None:
    data = dataset(store, rain_weighting=RainWeighting(variable="t2m", threshold=281.0))
    sampler = StepBatchSampler(len(data), 4, 5, seed=1, start_step=2)
    serial = list(make_loader(data, sampler, workers=0))
    parallel = list(make_loader(data, sampler, workers=2))
    assert len(serial) == len(parallel) == 3
    for a, b in zip(serial, parallel, strict=True):
        assert_same(a, b)
    batch = serial[0]
    assert tuple(batch["cond_dynamic"].shape) == (4, 3, 1, 2, 3)
    assert (
        tuple(batch["cond_coord"]["hr_origin"].shape) == (4, 2)
        and batch["cond_coord"]["time_index"].dtype == torch.int64
    )
    assert len(batch["meta"]["timestamps"]) == 4 and batch["meta"]["keys"] == sampler.global_batch(2)
    # The loader's batch is the collate of the dataset's own samples.
    assert_same(batch, collate_samples([data[key] for key in sampler.global_batch(2)]))
    moved = batch_to(batch, torch.device("cpu"))
    assert moved["meta"] is batch["meta"] and moved["cond_coord"] is not batch["cond_coord"]
    assert_same(moved, batch)


def test_indices_at_anchor_times(store: Path) -> None:
    data = dataset(store, split="val")
    assert data.indices_at([data.timestamps[3], data.timestamps[0]]) == [3, 0]
    with pytest.raises(ConfigError, match="is not a sample time of split 'val'"):
        data.indices_at(["1999-01-01"])


def test_dataset_pickles_without_open_arrays(store: Path) -> None:
    data = dataset(store)
    before = data[(3, 1)]
    clone = pickle.loads(pickle.dumps(data))
    assert clone._reader._arrays == {}  # type: ignore[union-attr]
    assert_same(clone[(3, 1)], before)


def test_bad_configuration_is_named(store: Path) -> None:
    with pytest.raises(ConfigError, match=r"rain_weighting\.variable 'precip' is not a dynamic variable"):
        dataset(store, rain_weighting=RainWeighting(variable="precip"))
    with pytest.raises(ConfigError, match="not a positive multiple of the coarsening factor 4"):
        dataset(store, patch_shape=(6, 12))
    wrong = TransformSet(
        target=[VariableTransform(variable="pr", transform=ZScoreSpec(mean=0, std=1))],
        dynamic=transforms().spec.dynamic,
        static=transforms().spec.static,
    )
    with pytest.raises(ConfigError, match=r"target transforms are for \['pr'\].*\['t2m'\]"):
        DownscalingDataset(store, "train", VariableTransforms(wrong), FEATURES)


def test_non_finite_conditioning_is_an_error_naming_store_and_array(tmp_path: Path) -> None:
    path = tmp_path / "bad.zarr"
    write_synthetic_dataset(path, n_times=12)
    array = zarr.open_array(path / "cond_dynamic", mode="r+")
    array[2, 0, 1, 1] = np.nan
    data = DownscalingDataset(path, "train", transforms(), FeatureSpec(temporal_steps=3), patch_shape=None)
    data[5]  # steps 4..6 are finite
    with pytest.raises(ArtifactError, match=r"bad.zarr: array 'cond_dynamic' has NaN/inf at time steps 1..3"):
        data[2]


def test_a_360_day_store_gives_the_same_samples_with_its_own_time_features(
    store: Path, tmp_path: Path
) -> None:
    """Training on a climate-model calendar: the same fields on a 360_day axis give the same samples, with the
    doy phase of a 360-day year (stride_core.calendars.year_phase), and dates are named in that calendar."""
    path = tmp_path / "dataset_360.zarr"
    write_synthetic_dataset(path, n_times=48, nan_fraction=0.2, calendar="360_day")
    standard, climate = dataset(store), dataset(path)
    assert len(climate) == len(standard) and climate.timestamps == standard.timestamps
    for key in ((0, 3), (5, 11)):
        a, b = standard[key], climate[key]
        for name in a:
            if name != "time_features":
                assert_same(a[name], b[name])
    for index in (0, 5, 20):  # train anchors: 2020-01-01 at hour `index`, the doy phase of a 360-day year
        phase = 2 * np.pi * (index / 24) / 360
        np.testing.assert_allclose(
            climate[(index, 0)]["time_features"].numpy()[:2], [np.sin(phase), np.cos(phase)], atol=1e-7
        )
    assert not np.allclose(
        climate[(20, 0)]["time_features"].numpy(),
        standard[(20, 0)]["time_features"].numpy(),
        atol=1e-7,
        rtol=0,
    )
    assert climate.indices_at(["2020-01-01T05:00:00"]) == standard.indices_at(["2020-01-01T05:00:00"])
    with pytest.raises(ConfigError, match="is not a sample time"):
        climate.indices_at(["1999-01-01"])
