import logging
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from stride_contracts import CheckpointManifest, ModelSpec, ProducerRef, SamplerSettings, SamplesManifest
from stride_contracts.checkpoint import TransformSet, VariableTransform, ZScoreSpec
from stride_contracts.samples import SAMPLES_ARRAYS
from stride_core.artifacts import read_manifest_folder, read_zarr_manifest, write_manifest_file
from stride_core.resume import open_work_folder
from stride_core.testing import write_synthetic_dataset
from stride_generate.cli import main
from stride_generate.config import GenerateConfig
from stride_generate.run import generation_fingerprint
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
    assert a["seeds"].values.tolist()[1] == [3, 4, 5]
    assert abs(float(a["members"].mean()) - 280) < 30  # inverse-transformed to kelvin


def test_resumes_from_finished_chunks(inputs: tuple[Path, Path], tmp_path: Path) -> None:
    # A first run killed after its first chunk: simulate by planting that chunk in its work folder.
    config = GenerateConfig(
        checkpoint=inputs[0],
        dataset=inputs[1],
        output=tmp_path / "s.zarr",
        members=3,
        max_dates=4,
        dates_per_chunk=2,
        sampler=SamplerSettings(steps=4),
    )
    manifest = read_manifest_folder(inputs[0], CheckpointManifest)
    work = open_work_folder(config.output, generation_fingerprint(config, manifest))
    np.save(work / "members_000000.npy", np.full((2, 3, 1, 16, 24), 123.0, dtype=np.float32))
    assert generate(inputs, tmp_path / "other.zarr", "--set", "dates_per_chunk=2") == 0  # own folder
    assert generate(inputs, tmp_path / "s.zarr", "--set", "dates_per_chunk=2", "--steps", "5") == 2  # changed
    assert generate(inputs, tmp_path / "s.zarr", "--set", "dates_per_chunk=2") == 0
    members = xr.open_zarr(tmp_path / "s.zarr")["members"].values
    assert (members[:2] == 123.0).all() and not (members[2:] == 123.0).any()
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
