"""`stride-train` work: read dataset and stats, derive ModelSpec and transforms, train, write the checkpoint."""

from __future__ import annotations

from pydantic import ValidationError

from stride_contracts import CheckpointManifest, DatasetManifest, ModelSpec, StatsManifest, StatsRow
from stride_contracts.checkpoint import TransformSet
from stride_contracts.dataset import DATASET_ARRAYS
from stride_core.artifacts import (
    MANIFEST_FILE,
    contract_rows,
    open_zarr_artifact,
    read_parquet_artifact,
    write_manifest_file,
)
from stride_core.atomic import atomic_output
from stride_core.errors import ArtifactError, ConfigError
from stride_core.features import ChannelCounts
from stride_core.progress import get_logger
from stride_core.resume import close_work_folder, work_folder
from stride_core.tracking import RunContext
from stride_core.transforms import VariableTransforms
from stride_core.variables import VariableRegistry
from stride_model import save_weights
from stride_train.config import TrainConfig
from stride_train.data import build_transform_set, open_training_data
from stride_train.distributed import World, start_world, stop_world
from stride_train.inline_eval import InlineEvaluator
from stride_train.loop import StopRequested, TrainResult, train

log = get_logger("stride-train")
BEST_EMA_WEIGHTS_FILE = "best_ema_weights.pt"


def model_spec_from(config: TrainConfig, counts: ChannelCounts) -> ModelSpec:
    """The config layer's channel accounting: counts and shapes from the adapter, sizes and parts from the config."""
    model, features = config.model, config.data.features
    if model.context_encoder and counts.context_shape is None:
        raise ConfigError(
            "model.context_encoder needs a context region: set data.features.context_margin > 0"
        )
    if model.film_doy and counts.n_time_features == 0:
        raise ConfigError("model.film_doy needs time features: set data.features.time_features, e.g. [doy]")
    try:
        return ModelSpec(
            kind=model.kind,
            **counts.model_spec_fields(),
            use_context_encoder=model.context_encoder,
            context_shape=counts.context_shape if model.context_encoder else None,
            context_channels=model.context_channels,
            use_film_vars=model.film_vars,
            num_var_labels=counts.num_var_labels if model.film_vars else None,
            use_film_doy=model.film_doy,
            n_time_features=counts.n_time_features if model.film_doy else 0,
            use_rain_gate=model.rain_gate is not None,
            rain_gate_threshold=model.rain_gate.threshold if model.rain_gate is not None else None,
            model_channels=model.model_channels,
            channel_mult=model.channel_mult,
            num_blocks=model.num_blocks,
            attn_resolutions=model.attn_resolutions,
            dropout=model.dropout,
            sigma_data=config.edm.sigma_data,
        )
    except ValidationError as exc:
        problem = exc.errors()[0]["msg"].removeprefix("Value error, ")
        shape = f"patch {config.data.patch}" if config.data.patch else f"HR grid {counts.hr_shape}"
        raise ConfigError(f"model: {problem} (training on {shape}, features {features})") from None


def run_train(config: TrainConfig, run: RunContext) -> None:
    """Train and write checkpoint/; under torchrun every rank trains its share and rank 0 writes."""
    # Catch SLURM's pre-emption signals from the start: their default action would end the process unsaved.
    stop = StopRequested()
    stop.install()
    try:
        world = start_world(config.training.device, config.training.batch_size)
        try:
            _train_and_write(config, run, world, stop)
        finally:
            stop_world(world)
    finally:
        stop.uninstall()


def _train_and_write(config: TrainConfig, run: RunContext, world: World, stop: StopRequested) -> None:
    stats, stats_manifest = read_parquet_artifact(config.stats, StatsManifest, StatsRow)
    _, manifest = open_zarr_artifact(config.dataset, DatasetManifest, DATASET_ARRAYS)
    run.record_input("dataset", config.dataset, manifest)
    run.record_input("stats", config.stats, stats_manifest)
    if stats_manifest.inputs and stats_manifest.inputs[0].uri != config.dataset.resolve().as_uri():
        log.warning("stats were computed from %s, not %s", stats_manifest.inputs[0].uri, config.dataset)
    if stats_manifest.split != "train":
        raise ArtifactError(
            f"{config.stats}: stats of split '{stats_manifest.split}'; transforms need 'train' stats"
        )

    registry = VariableRegistry.load(config.variables_file)
    transform_set = build_transform_set(stats, manifest, registry, dict(config.transforms))
    transforms = VariableTransforms(transform_set)
    data = open_training_data(config, manifest, transforms)
    spec = model_spec_from(config, data.counts)

    inline = None
    if config.inline_eval.every is not None and world.is_main:
        if data.val_full is None:
            raise ConfigError("inline_eval needs a 'val' split in the dataset; rebuild it with splits.val")
        inline = InlineEvaluator(data.val_full, spec, transforms, config.inline_eval, world.device, registry)
    result = train(spec, data, config, run, world, stop, inline)
    if world.is_main:
        _write_checkpoint(config, run, result, spec, transform_set, manifest, contract_rows(stats, StatsRow))
    world.barrier()  # all ranks leave together, once the checkpoint is published


def _write_checkpoint(
    config: TrainConfig,
    run: RunContext,
    result: TrainResult,
    spec: ModelSpec,
    transform_set: TransformSet,
    manifest: DatasetManifest,
    training_stats: list[StatsRow],
) -> None:
    best = result.best
    checkpoint = CheckpointManifest(
        producer=run.producer(),
        inputs=run.inputs,
        model_spec=spec,
        transforms=transform_set,
        target=manifest.target,
        dynamic=manifest.dynamic,
        static=manifest.static,
        features=config.data.features,
        step=result.step,
        best_ema_weights_file=BEST_EMA_WEIGHTS_FILE if best.found else None,
        best_step=best.step,
        best_val_loss=best.val_loss if best.found else None,
        training_config=config.model_dump(mode="json"),
        training_stats=training_stats,
        final_metrics=result.metrics,
    )
    with atomic_output(config.output) as staging:
        staging.mkdir()
        save_weights(result.model, staging / checkpoint.weights_file)
        save_weights(result.ema.model, staging / checkpoint.ema_weights_file)
        if checkpoint.best_ema_weights_file is not None:
            assert best.ema_state is not None
            save_weights(best.ema_state, staging / checkpoint.best_ema_weights_file)
        write_manifest_file(staging, checkpoint)
    close_work_folder(work_folder(config.output))
    run.set_tags({"stride.checkpoint.uri": config.output.resolve().as_uri()})
    if best.step is not None:
        run.set_tags({"stride.checkpoint.best_step": str(best.step)})
        run.log_metrics({"best_step": float(best.step), "best_val_loss_ema": best.val_loss}, step=result.step)
    run.log_artifact(config.output / MANIFEST_FILE, "checkpoint")
    log.info(
        "wrote %s (step %d, %s%s)",
        config.output,
        result.step,
        ", ".join(f"{k} {v:.4f}" for k, v in result.metrics.items() if k.startswith(("loss", "val", "best"))),
        f"; best EMA weights from step {best.step}" if best.found else "; no val split, so no best weights",
    )
