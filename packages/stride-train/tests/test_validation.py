import math
import shutil
import warnings
from pathlib import Path

import torch
import zarr

from stride_contracts import (
    CheckpointManifest,
    DatasetManifest,
    FeatureSpec,
    ModelSpec,
    StatsManifest,
    StatsRow,
)
from stride_contracts.dataset import DATASET_ARRAYS
from stride_core.artifacts import open_zarr_artifact, read_manifest_folder, read_parquet_artifact
from stride_core.transforms import VariableTransforms
from stride_core.variables import VariableRegistry
from stride_model import EDMLoss, build_model, load_weights
from stride_model.adapter import DownscalingDataset
from stride_train.cli import main
from stride_train.data import build_transform_set
from stride_train.validation import BestWeights, Validator

SPEC = ModelSpec(
    in_dynamic_channels=1,
    in_static_channels=2,
    out_channels=1,
    lr_shape=(4, 6),
    hr_shape=(16, 24),
    model_channels=8,
    channel_mult=(1, 2),
    attn_resolutions=(),
)


def test_validation_loss_depends_on_the_weights_alone(synthetic_inputs: tuple[Path, Path]) -> None:
    dataset, stats_path = synthetic_inputs
    stats, _ = read_parquet_artifact(stats_path, StatsManifest, StatsRow)
    _, manifest = open_zarr_artifact(dataset, DatasetManifest, DATASET_ARRAYS)
    transforms = VariableTransforms(build_transform_set(stats, manifest, VariableRegistry.load(None), {}))
    val = DownscalingDataset(dataset, "val", transforms, FeatureSpec(), in_memory=True)
    torch.manual_seed(0)
    model = build_model(SPEC).eval()
    for parameter in model.parameters():
        parameter.data.normal_(0, 0.05)

    def loss(batch_size: int) -> float:
        return Validator(val, SPEC, EDMLoss(), samples=6, batch_size=batch_size, seed=0).loss(model)

    rng_before = torch.get_rng_state()
    first = loss(4)
    torch.randn(1000)  # whatever else runs between validations draws from the global generator
    assert loss(4) == first
    assert math.isclose(loss(1), first, rel_tol=1e-6)  # batching only changes float32 rounding
    torch.set_rng_state(rng_before)
    loss(4)
    assert torch.equal(torch.get_rng_state(), rng_before)  # and validation draws from none it shares


def test_best_weights_keep_the_lowest_loss_as_a_copy() -> None:
    model = torch.nn.Linear(2, 1)
    best = BestWeights()
    assert best.offer(4, 0.5, model) and not best.offer(8, 0.5, model) and not best.offer(8, math.nan, model)
    kept = best.ema_state
    assert kept is not None
    with torch.no_grad():
        model.weight.add_(1.0)
    assert not torch.equal(kept["weight"], model.weight) and best.step == 4
    assert best.offer(12, 0.25, model) and best.step == 12
    elsewhere = BestWeights(keep_weights=False)  # ranks other than 0 track the step, not the weights
    assert elsewhere.offer(1, 0.1, model) and elsewhere.step == 1 and elsewhere.ema_state is None


def test_validation_never_changes_training(tiny_args: list[str], tmp_path: Path) -> None:
    often = ["--set", "training.val_every=1"]
    assert main([*tiny_args, "--out", str(tmp_path / "often"), "--steps", "4", *often]) == 0
    assert main([*tiny_args, "--out", str(tmp_path / "rarely"), "--steps", "4"]) == 0
    for name in ("weights.pt", "ema_weights.pt", "best_ema_weights.pt"):
        often_weights = load_weights(tmp_path / "often" / name)
        rarely_weights = load_weights(tmp_path / "rarely" / name)
        same = all(torch.equal(often_weights[k], v) for k, v in rarely_weights.items())
        # Best may be an earlier step when validating every step; last weights are always identical.
        assert same or name == "best_ema_weights.pt", name
    often_manifest = read_manifest_folder(tmp_path / "often", CheckpointManifest)
    rarely_manifest = read_manifest_folder(tmp_path / "rarely", CheckpointManifest)
    assert often_manifest.final_metrics["val_loss_ema"] == rarely_manifest.final_metrics["val_loss_ema"]
    assert often_manifest.best_val_loss is not None and rarely_manifest.best_val_loss is not None
    assert often_manifest.best_val_loss <= rarely_manifest.best_val_loss


def test_without_a_val_split_there_is_no_best(
    synthetic_inputs: tuple[Path, Path], tiny_args: list[str], tmp_path: Path
) -> None:
    dataset = tmp_path / "dataset.zarr"
    shutil.copytree(synthetic_inputs[0], dataset)
    group = zarr.open_group(dataset, mode="r+")
    manifest = dict(group.attrs["stride"])
    manifest["splits"] = {k: v for k, v in manifest["splits"].items() if k != "val"}
    group.attrs["stride"] = manifest
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zarr's note that consolidated metadata is an extension
        zarr.consolidate_metadata(dataset)
    assert main([*tiny_args, "--dataset", str(dataset), "--out", str(tmp_path / "ckpt"), "--steps", "2"]) == 0
    checkpoint = read_manifest_folder(tmp_path / "ckpt", CheckpointManifest)
    assert checkpoint.best_step is None and checkpoint.best_val_loss is None
    assert checkpoint.best_ema_weights_file is None
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == [
        "ema_weights.pt",
        "manifest.json",
        "weights.pt",
    ]
