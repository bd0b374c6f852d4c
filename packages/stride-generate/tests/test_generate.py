import hashlib
import logging
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr
import zarr
from mlflow.tracking import MlflowClient

from stride_contracts import CheckpointManifest, DatasetManifest, ModelSpec, ProducerRef, SamplesManifest
from stride_contracts.checkpoint import TransformSet, VariableTransform, ZScoreSpec
from stride_contracts.dataset import DATASET_ARRAYS
from stride_contracts.samples import SAMPLES_ARRAYS
from stride_core.artifacts import (
    open_zarr_artifact,
    read_zarr_manifest,
    write_manifest_file,
    write_zarr_artifact,
)
from stride_core.resume import work_folder
from stride_core.testing import write_synthetic_dataset
from stride_generate import run as generate_run
from stride_generate.cli import main
from stride_generate.sampling import sample_dates
from stride_model import build_model, save_weights


def write_checkpoint(folder: Path, manifest_data: object, kind: str = "edm", with_best: bool = False) -> None:
    spec = ModelSpec(
        kind=kind,
        in_dynamic_channels=1,
        in_static_channels=2,
        out_channels=1,
        lr_shape=(4, 6),
        hr_shape=(16, 24),
        model_channels=8,
        channel_mult=(1, 2),
        attn_resolutions=(),
    )
    model = build_model(spec)
    for parameter in model.parameters():  # non-zero output layer so members differ
        parameter.data.normal_(0, 0.05)
    folder.mkdir()
    save_weights(model, folder / "weights.pt")
    save_weights(model, folder / "ema_weights.pt")
    if with_best:
        for parameter in model.parameters():
            parameter.data.normal_(0, 0.05)
        save_weights(model, folder / "best_ema_weights.pt")
    best = {"best_ema_weights_file": "best_ema_weights.pt", "best_step": 3, "best_val_loss": 0.5}
    z = ZScoreSpec(mean=280.0, std=3.0)
    data = manifest_data
    write_manifest_file(
        folder,
        CheckpointManifest(
            producer=ProducerRef(tool="test", stride_version="0", created_utc=datetime.now(UTC)),
            model_spec=spec,
            transforms=TransformSet(
                target=[VariableTransform(variable="t2m", transform=z)],
                dynamic=[VariableTransform(variable="t2m", transform=z)],
                static=[
                    VariableTransform(variable="orography", transform=ZScoreSpec(mean=0, std=1)),
                    VariableTransform(variable="lsm", transform=ZScoreSpec(mean=0, std=1)),
                ],
            ),
            target=data.target,
            dynamic=data.dynamic,
            static=data.static,  # type: ignore[attr-defined]
            step=5,
            training_config={},
            **(best if with_best else {}),  # type: ignore[arg-type]
        ),
    )


@pytest.fixture
def inputs(tmp_path: Path) -> tuple[Path, Path]:
    manifest = write_synthetic_dataset(tmp_path / "dataset.zarr")
    write_checkpoint(tmp_path / "ckpt", manifest)
    return tmp_path / "ckpt", tmp_path / "dataset.zarr"


def generate(inputs: tuple[Path, Path], out: Path, *extra: str) -> int:
    ckpt, dataset = inputs
    return main(
        [
            "--checkpoint",
            str(ckpt),
            "--dataset",
            str(dataset),
            "--out",
            str(out),
            "--members",
            "3",
            "--steps",
            "4",
            "--set",
            "max_dates=4",
            *extra,
        ]
    )


def test_samples_contract_and_reproducible_members(inputs: tuple[Path, Path], tmp_path: Path) -> None:
    assert generate(inputs, tmp_path / "a.zarr", "--set", "batch_size=12", "--set", "dates_per_chunk=4") == 0
    assert generate(inputs, tmp_path / "b.zarr", "--set", "batch_size=1", "--set", "dates_per_chunk=1") == 0
    manifest = read_zarr_manifest(tmp_path / "a.zarr", SamplesManifest, SAMPLES_ARRAYS)
    assert manifest.n_members == 3 and manifest.sampler.steps == 4 and manifest.has_target
    a, b = xr.open_zarr(tmp_path / "a.zarr"), xr.open_zarr(tmp_path / "b.zarr")
    assert a["members"].shape == (4, 3, 1, 16, 24) and a["pmm"].shape == (4, 1, 16, 24)
    # Same member whatever the batching, up to float32 round-off of batch-size-dependent kernels.
    np.testing.assert_allclose(a["members"].values, b["members"].values, rtol=1e-5, atol=0)
    assert not np.allclose(a["members"].values[:, 0], a["members"].values[:, 1])
    # SEED_RULE by hand: SHA-256 of base seed, the date's timestamp and the member index.
    key = f"stride-member|0|{pd.Timestamp(a['time'].values[1]):%Y-%m-%dT%H:%M:%S}|2".encode()
    assert a["seeds"].values[1, 2] == int.from_bytes(hashlib.sha256(key).digest()[:8], "big") & (2**63 - 1)
    assert manifest.seed_rule is not None and "sha256" in manifest.seed_rule
    # Ensemble mean and spread beside the members, one Zarr chunk per date.
    np.testing.assert_allclose(a["mean"].values, a["members"].values.mean(axis=1), rtol=1e-6)
    np.testing.assert_allclose(a["std"].values, a["members"].values.std(axis=1, ddof=1), rtol=1e-5)
    assert a["members"].encoding["chunks"][0] == 1 and a["pmm"].encoding["chunks"][0] == 1
    assert abs(float(a["members"].mean()) - 280) < 30  # inverse-transformed to kelvin


def test_a_member_is_the_same_in_any_run(tmp_path: Path) -> None:
    # Seeds come from the date's timestamp, not its position: a 48-date run, every 5th date, and one date
    # alone (max_dates=4 in every run but the first) give bit-identical members for the dates they share.
    manifest = write_synthetic_dataset(tmp_path / "dataset.zarr", n_times=96)
    write_checkpoint(tmp_path / "ckpt", manifest)
    inputs = (tmp_path / "ckpt", tmp_path / "dataset.zarr")
    common = ("--set", "split=train", "--steps", "2", "--set", "dates_per_chunk=16")
    assert generate(inputs, tmp_path / "all.zarr", *common, "--set", "max_dates=48") == 0
    assert generate(inputs, tmp_path / "every.zarr", *common, "--set", "date_stride=5") == 0
    assert generate(inputs, tmp_path / "one.zarr", *common, "--set", "dates=[2020-01-02T13]") == 0
    full, every, one = (xr.open_zarr(tmp_path / f"{n}.zarr") for n in ("all", "every", "one"))
    assert full.sizes["time"] == 48 and one.sizes["time"] == 1
    alone = full.sel(time=one["time"].values)
    np.testing.assert_array_equal(one["members"].values, alone["members"].values)
    np.testing.assert_array_equal(one["seeds"].values, alone["seeds"].values)
    np.testing.assert_array_equal(every["members"].values, full["members"].values[::5][:4])  # max_dates=4


def test_bad_date_selection(
    inputs: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert generate(inputs, tmp_path / "x.zarr", "--set", "dates=[1999-01-01]") == 2
    assert "dates: '1999-01-01' matches no date" in capsys.readouterr().err
    assert not (tmp_path / "x.zarr").exists()


def test_a_killed_run_resumes_bit_for_bit(
    inputs: tuple[Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    chunked = ("--set", "dates_per_chunk=1")
    assert generate(inputs, tmp_path / "whole.zarr", *chunked) == 0
    # A run killed while sampling its third chunk of dates.
    calls = {"n": 0}

    def dies_on_third_chunk(*args: object, **kwargs: object) -> np.ndarray:
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return sample_dates(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(generate_run, "sample_dates", dies_on_third_chunk)
    assert generate(inputs, tmp_path / "s.zarr", *chunked) == 130
    assert not (tmp_path / "s.zarr").exists()
    work = work_folder(tmp_path / "s.zarr")
    # A chunk half-written when the job died (data but no mark) is written again, not trusted.
    zarr.open_group(work / "samples.zarr", mode="r+")["members"][2] = 123.0
    monkeypatch.setattr(generate_run, "sample_dates", sample_dates)
    assert generate(inputs, tmp_path / "s.zarr", *chunked, "--steps", "5") == 2  # other settings: refused
    monkeypatch.setattr(logging.getLogger("stride-generate"), "handlers", [caplog.handler])
    assert generate(inputs, tmp_path / "s.zarr", *chunked) == 0
    assert "resumed: 2 dates done, 2 left" in caplog.text
    resumed, whole = xr.open_zarr(tmp_path / "s.zarr"), xr.open_zarr(tmp_path / "whole.zarr")
    for name in ("members", "pmm", "mean", "std", "seeds", "target", "cond_dynamic"):
        np.testing.assert_array_equal(resumed[name].values, whole[name].values)
    assert not work.exists()


def test_regression_checkpoint_gives_one_member(tmp_path: Path) -> None:
    manifest = write_synthetic_dataset(tmp_path / "dataset.zarr")
    write_checkpoint(tmp_path / "reg", manifest, kind="regression")
    assert generate((tmp_path / "reg", tmp_path / "dataset.zarr"), tmp_path / "r.zarr") == 0
    assert xr.open_zarr(tmp_path / "r.zarr")["members"].shape[1] == 1


def test_a_larger_domain_is_tiled_unless_one_pass_is_asked_for(
    inputs: tuple[Path, Path],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    write_synthetic_dataset(tmp_path / "larger.zarr", height=32, width=48)
    monkeypatch.setattr(logging.getLogger("stride-generate"), "handlers", [caplog.handler])
    with caplog.at_level(logging.INFO, logger="stride-generate"):
        assert generate((inputs[0], tmp_path / "larger.zarr"), tmp_path / "x.zarr") == 0
        # A default overlap of a quarter of the 16 x 24 patch (4): 3 x 3 tiles.
        assert (
            "tiling 32x48, grown by a 4 px mirrored border, in 9 tiles of 16x24 (overlap 4), blended at every step"
            in caplog.text
        )
        assert (
            generate((inputs[0], tmp_path / "larger.zarr"), tmp_path / "y.zarr", "--set", "tiling=null") == 0
        )
        assert "tiling: null samples the 32x48 domain in one pass" in caplog.text
    tiled, whole = (xr.open_zarr(tmp_path / f"{n}.zarr")["members"].values for n in "xy")
    assert tiled.shape[-2:] == (32, 48) and np.isfinite(tiled).all() and np.isfinite(whole).all()
    assert not np.array_equal(tiled, whole)


def test_a_regression_checkpoint_is_tiled_like_its_one_pass_prediction(tmp_path: Path) -> None:
    """stride-generate on a regression checkpoint (16x24 patches) and a 32x48 domain: tiled, with and
    without the mirrored margin, against the network run once on the whole domain (tiling=null).

    They cannot be equal: the UNet's GroupNorm normalises over each tile rather than the domain, and a
    tile's zero-padded edge keeps a small blend weight (sin^2(pi/16) = 0.04 on its outermost pixel). Measured
    for 5 random weight draws, as an rms over the dates' fields divided by their spatial std: 0.046-0.083
    tiled on the domain itself (tiling.border=0), 0.097-0.122 with the default margin on the pixels at least
    the margin inside the domain; nearer the edge the margin replaces the one pass's zero-padded edge
    prediction (0.42-0.64 over the whole domain), which is its purpose. Limits: 0.15 and 0.2.
    """
    manifest = write_synthetic_dataset(tmp_path / "larger.zarr", height=32, width=48)
    torch.manual_seed(0)
    write_checkpoint(tmp_path / "reg", manifest, kind="regression")
    inputs = (tmp_path / "reg", tmp_path / "larger.zarr")
    runs = {"margin": (), "bare": ("--set", "tiling.border=0"), "whole": ("--set", "tiling=null")}
    for name, extra in runs.items():
        assert generate(inputs, tmp_path / f"{name}.zarr", *extra) == 0
    fields = {name: xr.open_zarr(tmp_path / f"{name}.zarr")["members"].values for name in runs}
    assert all(field.shape == (4, 1, 1, 32, 48) and np.isfinite(field).all() for field in fields.values())
    whole = fields["whole"][:, 0, 0]
    scale = whole.std(axis=(-2, -1)).mean()
    assert scale > 0

    def relative_rms(name: str, inset: int) -> float:
        inside = (slice(None), slice(inset, 32 - inset), slice(inset, 48 - inset))
        difference = fields[name][:, 0, 0][inside] - whole[inside]
        return float(np.sqrt((difference**2).mean()) / scale)

    assert 0 < relative_rms("bare", 0) <= 0.15
    assert 0 < relative_rms("margin", 4) <= 0.2  # the default margin is the overlap, 4 px


def test_incompatible_dataset(
    inputs: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_synthetic_dataset(tmp_path / "other.zarr", factor=2)
    assert generate((inputs[0], tmp_path / "other.zarr"), tmp_path / "x.zarr") == 2
    assert "factor 2 differs from the checkpoint's 4" in capsys.readouterr().err


def test_best_or_last_weights(
    inputs: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    manifest = write_synthetic_dataset(tmp_path / "dataset2.zarr")
    write_checkpoint(tmp_path / "with_best", manifest, with_best=True)
    with_best = (tmp_path / "with_best", tmp_path / "dataset2.zarr")
    assert generate(with_best, tmp_path / "best.zarr") == 0  # best is the default
    assert generate(with_best, tmp_path / "last.zarr", "--set", "weights=last") == 0
    monkeypatch.setattr(logging.getLogger("stride-generate"), "handlers", [caplog.handler])
    assert generate(inputs, tmp_path / "no_best.zarr") == 0  # a checkpoint without best falls back to last
    assert (
        "has no best weights (trained without a validation split); using the last EMA weights" in caplog.text
    )
    assert generate(inputs, tmp_path / "no_best_last.zarr", "--set", "weights=last") == 0
    best, last, no_best, no_best_last = (
        xr.open_zarr(tmp_path / f"{name}.zarr")["members"].values
        for name in ("best", "last", "no_best", "no_best_last")
    )
    assert not np.allclose(best, last)
    np.testing.assert_array_equal(no_best, no_best_last)
    steps = [
        read_zarr_manifest(tmp_path / f"{n}.zarr", SamplesManifest).checkpoint_step for n in ("best", "last")
    ]
    assert steps == [3, 5]

    assert generate(with_best, tmp_path / "raw.zarr", "--set", "use_ema=false") == 2
    assert "use_ema=false selects the raw trained weights" in capsys.readouterr().err


def test_export_writes_cf_netcdf(inputs: tuple[Path, Path], tmp_path: Path) -> None:
    assert generate(inputs, tmp_path / "s.zarr") == 0
    assert main(["export", "--samples", str(tmp_path / "s.zarr"), "--out", str(tmp_path / "s.nc")]) == 0
    samples = xr.open_zarr(tmp_path / "s.zarr")
    with xr.open_dataset(tmp_path / "s.nc", engine="h5netcdf") as nc:
        assert nc.attrs["Conventions"] == "CF-1.8" and "stride.samples" in nc.attrs["stride_manifest"]
        assert nc["t2m"].dims == ("time", "realization", "y", "x") and nc["t2m"].attrs["units"] == "K"
        np.testing.assert_array_equal(nc["t2m"].values, samples["members"].values[:, :, 0])
        np.testing.assert_array_equal(nc["t2m_std"].values, samples["std"].values[:, 0])
        assert nc["t2m_mean"].attrs["cell_methods"] == "time: point realization: mean"
        assert nc["realization"].attrs["standard_name"] == "realization"
        assert nc["lat"].attrs["units"] == "degrees_north"
        np.testing.assert_array_equal(nc["time"].values, samples["time"].values)
    assert not list(tmp_path.glob(".s.nc*"))  # no staging file left


def test_tiled_generation_and_bad_tiling(
    inputs: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A domain 4x the training patch (16 x 24) in tiles of that patch, blended at every step.
    write_synthetic_dataset(tmp_path / "larger.zarr", height=32, width=48)
    larger = (inputs[0], tmp_path / "larger.zarr")
    assert generate(larger, tmp_path / "t.zarr", "--set", "tiling={overlap: 8}") == 0
    members = xr.open_zarr(tmp_path / "t.zarr")["members"]
    assert members.shape[-2:] == (32, 48) and np.isfinite(members.values).all()
    assert generate(larger, tmp_path / "u.zarr", "--set", "tiling={tile: [16, 16]}") == 2
    assert (
        "tiling.tile: [16, 16] differs from the checkpoint's training patch [16, 24]"
        in capsys.readouterr().err
    )
    assert generate(larger, tmp_path / "u.zarr", "--set", "tiling={overlap: 16}") == 2
    assert "tiling.overlap: 16 must be a multiple of the factor 4 and smaller" in capsys.readouterr().err
    assert not (tmp_path / "u.zarr").exists()


# --- region: part of a larger dataset, without rebuilding it --------------------------------------------


def crop_dataset(source: Path, target: Path, rows: slice, cols: slice, factor: int) -> None:
    """The dataset rebuilt on a box: what a region at generation must match without rebuilding."""
    dataset, manifest = open_zarr_artifact(source, DatasetManifest, DATASET_ARRAYS)
    lr_rows, lr_cols = (
        slice(rows.start // factor, rows.stop // factor),
        slice(cols.start // factor, cols.stop // factor),
    )
    cropped = dataset.isel(y=rows, x=cols, y_lr=lr_rows, x_lr=lr_cols).load()
    height, width = rows.stop - rows.start, cols.stop - cols.start
    grid = manifest.grid.model_copy(
        update={"hr_shape": (height, width), "lr_shape": (height // factor, width // factor)}
    )
    for name in cropped.variables:
        cropped[name].encoding.clear()
    write_zarr_artifact(cropped, manifest.model_copy(update={"grid": grid}), target)


@pytest.fixture
def larger(tmp_path: Path) -> tuple[Path, Path]:
    """A checkpoint trained on 16 x 24 patches and a 32 x 48 dataset (factor 4) around them."""
    manifest = write_synthetic_dataset(tmp_path / "larger.zarr", height=32, width=48)
    write_checkpoint(tmp_path / "ckpt", manifest)
    return tmp_path / "ckpt", tmp_path / "larger.zarr"


def test_a_region_equals_the_dataset_rebuilt_on_it(larger: tuple[Path, Path], tmp_path: Path) -> None:
    rows, cols = slice(8, 24), slice(20, 44)
    crop_dataset(larger[1], tmp_path / "crop.zarr", rows, cols, factor=4)
    box = "region={box: {y0: 8, y1: 24, x0: 20, x1: 44}}"
    assert generate(larger, tmp_path / "r.zarr", "--set", box) == 0
    assert generate((larger[0], tmp_path / "crop.zarr"), tmp_path / "c.zarr") == 0
    region, rebuilt = xr.open_zarr(tmp_path / "r.zarr"), xr.open_zarr(tmp_path / "c.zarr")
    full = xr.open_zarr(larger[1])
    assert region["members"].shape == (4, 3, 1, 16, 24)
    # The same inputs as the rebuilt dataset (no context margin here), so the same members bit for bit.
    np.testing.assert_array_equal(region["members"].values, rebuilt["members"].values)
    # HR/LR alignment: the region's truth, LR input and coordinates are the dataset's at that box.
    times = region["time"].values
    np.testing.assert_array_equal(
        region["target"].values, full["target"].sel(time=times).values[:, :, rows, cols]
    )
    np.testing.assert_array_equal(
        region["cond_dynamic"].values, full["cond_dynamic"].sel(time=times).values[:, :, 2:6, 5:11]
    )
    np.testing.assert_array_equal(region["lat"].values, full["lat"].values[rows])
    np.testing.assert_array_equal(region["lon_lr"].values, full["lon_lr"].values[5:11])


def test_a_region_by_centre_and_size_snaps_to_the_lr_grid(larger: tuple[Path, Path], tmp_path: Path) -> None:
    full = xr.open_zarr(larger[1])
    lat, lon = float(full["lat"].values[17]), float(full["lon"].values[25])
    region = f"region={{center: [{lat}, {lon}], size: [16, 24]}}"
    assert generate(larger, tmp_path / "r.zarr", "--set", region) == 0
    samples = xr.open_zarr(tmp_path / "r.zarr")
    # Centred on row 17, col 25: rows 9:25, cols 13:37, moved down onto the LR grid (factor 4).
    np.testing.assert_array_equal(samples["lat"].values, full["lat"].values[8:24])
    np.testing.assert_array_equal(samples["lon"].values, full["lon"].values[12:36])
    grid = read_zarr_manifest(tmp_path / "r.zarr", SamplesManifest, SAMPLES_ARRAYS).grid
    assert grid.hr_shape == (16, 24) and grid.lr_shape == (4, 6) and "center" in str(grid.region)


def test_a_region_larger_than_the_patch_is_tiled(larger: tuple[Path, Path], tmp_path: Path) -> None:
    box = "region={box: {y0: 0, y1: 32, x0: 0, x1: 40}}"
    assert generate(larger, tmp_path / "r.zarr", "--set", box, "--set", "tiling={overlap: 4}") == 0
    members = xr.open_zarr(tmp_path / "r.zarr")["members"]
    assert members.shape[-2:] == (32, 40) and np.isfinite(members.values).all()


def test_a_region_outside_the_domain_is_one_line(
    larger: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    box = "region={box: {y0: 16, y1: 48, x0: 0, x1: 24}}"
    assert generate(larger, tmp_path / "r.zarr", "--set", box) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]  # the error: one line, last
    assert (
        "region rows 16:48 cols 0:24" in error and "extends beyond the 32x48 grid; move or shrink it" in error
    )
    assert not (tmp_path / "r.zarr").exists()
    assert generate(larger, tmp_path / "r.zarr", "--set", "region={name: alps}") == 2
    error = capsys.readouterr().err
    assert "region 'alps'" in error and "lies outside the grid" in error


def test_misaligned_lr_coordinates_are_refused(
    larger: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shifted = tmp_path / "shifted.zarr"
    dataset, manifest = open_zarr_artifact(larger[1], DatasetManifest, DATASET_ARRAYS)
    dataset = dataset.load()
    dataset["lat_lr"] = dataset["lat_lr"] + float(dataset["lat"][0] - dataset["lat"][1])  # one HR row off
    for name in dataset.variables:
        dataset[name].encoding.clear()
    write_zarr_artifact(dataset, manifest, shifted)
    assert (
        generate(
            (larger[0], shifted), tmp_path / "r.zarr", "--set", "region={box: {y0: 0, y1: 16, x0: 0, x1: 24}}"
        )
        == 2
    )
    assert (
        "lat_lr is not the block mean of lat (factor 4): HR and LR grids are misaligned"
        in capsys.readouterr().err
    )


# --- ranks: dates sharded across the processes of a torchrun job -------------------------------------------


def test_two_ranks_write_the_same_store_as_one_process(tmp_path: Path) -> None:
    # 2 CPU processes under torchrun (gloo): each samples every other chunk of dates into the one store,
    # rank 0 publishes it; the result equals a single-process run bit for bit.
    manifest = write_synthetic_dataset(tmp_path / "dataset.zarr", n_times=48)
    write_checkpoint(tmp_path / "ckpt", manifest)
    common = [
        "--checkpoint", str(tmp_path / "ckpt"), "--dataset", str(tmp_path / "dataset.zarr"), "--members", "2",
        "--steps", "2", "--set", "split=train", "--set", "max_dates=10", "--set", "dates_per_chunk=3",
        "--set", "threads=1",
    ]  # fmt: skip
    assert main([*common, "--out", str(tmp_path / "one.zarr")]) == 0
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "MLFLOW_TRACKING_URI")}
    env.update(STRIDE_PROGRESS="0", OMP_NUM_THREADS="1")
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    done = subprocess.run(
        [*launcher, "-m", "stride_generate.cli", *common, "--out", str(tmp_path / "two.zarr")],
        env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "on 2 ranks" in done.stderr
    one, two = xr.open_zarr(tmp_path / "one.zarr"), xr.open_zarr(tmp_path / "two.zarr")
    assert set(one.data_vars) == set(two.data_vars) and two.sizes["time"] == 10
    for name in one.data_vars:
        np.testing.assert_array_equal(one[name].values, two[name].values, err_msg=name)
    np.testing.assert_array_equal(one["time"].values, two["time"].values)
    manifest_two = read_zarr_manifest(tmp_path / "two.zarr", SamplesManifest, SAMPLES_ARRAYS)
    assert manifest_two.n_members == 2 and not work_folder(tmp_path / "two.zarr").exists()
    # One MLflow run (rank 0's), beside the output.
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert (
        sorted(run.data.tags.get("stride.samples.uri", "") for run in runs).count(
            (tmp_path / "two.zarr").resolve().as_uri()
        )
        == 1
    )
