import hashlib
import logging
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
import zarr

from stride_contracts import CheckpointManifest, ModelSpec, ProducerRef, SamplesManifest
from stride_contracts.checkpoint import TransformSet, VariableTransform, ZScoreSpec
from stride_contracts.samples import SAMPLES_ARRAYS
from stride_core.artifacts import read_zarr_manifest, write_manifest_file
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


def test_a_larger_domain_with_the_same_factor_is_sampled_whole(
    inputs: tuple[Path, Path], tmp_path: Path
) -> None:
    write_synthetic_dataset(tmp_path / "larger.zarr", height=32, width=48)
    assert generate((inputs[0], tmp_path / "larger.zarr"), tmp_path / "x.zarr") == 0
    members = xr.open_zarr(tmp_path / "x.zarr")["members"]
    assert members.shape[-2:] == (32, 48) and np.isfinite(members.values).all()


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
