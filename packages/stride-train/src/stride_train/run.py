"""`stride-train` work: read dataset and stats, derive ModelSpec and transforms, train, write the checkpoint."""

from __future__ import annotations

from pydantic import ValidationError

from stride_contracts import CheckpointManifest, ModelSpec, StatsManifest, StatsRow
from stride_contracts.dataset import GridInfo
from stride_core.artifacts import read_parquet_artifact, write_manifest_file
from stride_core.atomic import atomic_output
from stride_core.errors import ArtifactError, ConfigError
from stride_core.progress import get_logger
from stride_core.resume import close_work_folder, work_folder
from stride_core.splits import load_split
from stride_core.tracking import RunContext
from stride_core.transforms import VariableTransforms
from stride_core.variables import VariableRegistry
from stride_model import save_weights
from stride_train.config import TrainConfig
from stride_train.data import build_transform_set, to_model_space
from stride_train.loop import train

log = get_logger("stride-train")


def model_spec_from(
    config: TrainConfig, grid: GridInfo, n_target: int, n_dynamic: int, n_static: int
) -> ModelSpec:
    """The config layer's channel accounting: counts and shapes from the dataset, sizes from the config."""
    try:
        return ModelSpec(
            kind=config.model.kind,
            in_dynamic_channels=n_dynamic,
            in_static_channels=n_static,
            out_channels=n_target,
            temporal_steps=1,
            lr_shape=grid.lr_shape,
            hr_shape=grid.hr_shape,
            model_channels=config.model.model_channels,
            channel_mult=config.model.channel_mult,
            num_blocks=config.model.num_blocks,
            attn_resolutions=config.model.attn_resolutions,
            dropout=config.model.dropout,
            sigma_data=config.edm.sigma_data,
        )
    except ValidationError as exc:
        problem = exc.errors()[0]["msg"].removeprefix("Value error, ")
        raise ConfigError(
            f"model: {problem} (dataset {config.dataset} has HR grid {grid.hr_shape})"
        ) from None


def run_train(config: TrainConfig, run: RunContext) -> None:
    stats, stats_manifest = read_parquet_artifact(config.stats, StatsManifest, StatsRow)
    train_arrays = load_split(config.dataset, "train")
    manifest = train_arrays.manifest
    run.record_input("dataset", config.dataset, manifest)
    run.record_input("stats", config.stats, stats_manifest)
    if stats_manifest.inputs and stats_manifest.inputs[0].uri != config.dataset.resolve().as_uri():
        log.warning("stats were computed from %s, not %s", stats_manifest.inputs[0].uri, config.dataset)
    if stats_manifest.split != "train":
        raise ArtifactError(
            f"{config.stats}: stats of split '{stats_manifest.split}'; transforms need 'train' stats"
        )

    registry = VariableRegistry.load(config.variables_file)
    transform_set = build_transform_set(stats, train_arrays, registry, dict(config.transforms))
    transforms = VariableTransforms(transform_set)
    spec = model_spec_from(
        config, manifest.grid, len(manifest.target), len(manifest.dynamic), len(manifest.static)
    )
    train_data = to_model_space(train_arrays, transforms)
    val_data = (
        to_model_space(load_split(config.dataset, "val"), transforms) if "val" in manifest.splits else None
    )

    result = train(spec, train_data, val_data, config, run)

    checkpoint = CheckpointManifest(
        producer=run.producer(),
        inputs=run.inputs,
        model_spec=spec,
        transforms=transform_set,
        target=manifest.target,
        dynamic=manifest.dynamic,
        static=manifest.static,
        step=result.step,
        training_config=config.model_dump(mode="json"),
        final_metrics=result.metrics,
    )
    with atomic_output(config.output) as staging:
        staging.mkdir()
        save_weights(result.model, staging / checkpoint.weights_file)
        save_weights(result.ema.model, staging / checkpoint.ema_weights_file)
        write_manifest_file(staging, checkpoint)
    close_work_folder(work_folder(config.output))
    run.set_tags({"stride.checkpoint.uri": config.output.resolve().as_uri()})
    run.log_artifact(config.output / "manifest.json", "checkpoint")
    log.info(
        "wrote %s (step %d, %s)",
        config.output,
        result.step,
        ", ".join(f"{k} {v:.4f}" for k, v in result.metrics.items() if k.startswith(("loss", "val", "best"))),
    )
