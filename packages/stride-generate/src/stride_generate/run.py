"""`stride-generate` work: sample every chosen date chunk by chunk into a pre-created samples.zarr.

Each chunk of dates is written into the store (in the hidden work folder) as soon as it is sampled, so
memory holds one chunk and a killed job resumes at the first unfinished chunk; the store is published under
its final name once every chunk is written.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from stride_contracts import CheckpointManifest, SamplesManifest
from stride_contracts.dataset import GridInfo
from stride_core.artifacts import read_manifest_folder
from stride_core.errors import ArtifactError, ConfigError, StrideError
from stride_core.progress import get_logger, progress
from stride_core.resume import close_work_folder, fingerprint, open_work_folder
from stride_core.splits import SplitArrays, load_split
from stride_core.tracking import RunContext
from stride_core.transforms import VariableTransforms
from stride_generate.bounds import IntensityBound
from stride_generate.config import GenerateConfig
from stride_generate.domain_shift import measure_shift
from stride_generate.ranks import Ranks, join_ranks, leave_ranks
from stride_generate.region import select_region
from stride_generate.sampling import choose_weights, load_model, sample_dates, tiling_of
from stride_generate.seeds import SEED_RULE, date_key, seed_table
from stride_generate.store import SamplesStore, StoreLayout, ensemble_fields
from stride_model.adapter import DownscalingDataset, batch_to, collate_samples
from stride_model.rain_gate import FillTally

log = get_logger("stride-generate")


def check_compatible(
    checkpoint: CheckpointManifest,
    arrays: SplitArrays,
    dataset: Path,
    *,
    tiled: bool = False,
    grid: GridInfo | None = None,
) -> None:
    """The dataset must offer the variables and grid the model was trained on (`grid`: the region's)."""
    data = arrays.manifest
    for role in ("target", "dynamic", "static"):
        have = [v.name for v in getattr(data, role)]
        want = [v.name for v in getattr(checkpoint, role)]
        if have != want:
            raise ArtifactError(
                f"{dataset}: {role} variables {have} differ from the checkpoint's {want}; build the dataset with "
                f"the training variables"
            )
    spec = checkpoint.model_spec
    if data.grid.factor != spec.factor:
        raise ArtifactError(
            f"{dataset}: HR/LR factor {data.grid.factor} differs from the checkpoint's {spec.factor} "
            f"(trained on HR {spec.hr_shape} from LR {spec.lr_shape}); build the dataset with coarsen.factor "
            f"{spec.factor}"
        )
    # In one pass the network runs on the whole domain (it is convolutional), which each level of the UNet
    # must halve exactly; tiles are the training patch, which does.
    down = 2 ** (len(spec.channel_mult) - 1)
    hr_shape = tuple(grid.hr_shape) if grid is not None else tuple(data.grid.hr_shape)
    if not tiled and (hr_shape[0] % down or hr_shape[1] % down):
        raise ArtifactError(
            f"{dataset}: HR grid {hr_shape} is not divisible by {down} ({len(spec.channel_mult)} UNet "
            f"levels); choose a region whose HR size divides by {down}"
        )


def report_domain_shift(
    checkpoint: CheckpointManifest, arrays: SplitArrays, config: GenerateConfig, run: RunContext
) -> None:
    """Say how far the LR inputs lie from the training inputs (logged to MLflow; a warning past the limits)."""
    report = measure_shift(
        arrays.cond_dynamic, [v.name for v in checkpoint.dynamic], checkpoint.training_stats
    )
    if report is None:
        log.info("%s carries no training statistics: domain shift not measured", config.checkpoint)
        return
    for shift in report.shifts:
        log.info(
            "input %s: mean %+.2f training SDs, spread x%.2f, %.2f%% of cells outside the training range",
            shift.variable,
            shift.mean_sd,
            shift.std_ratio,
            100 * report.outside[shift.variable],
        )
    run.log_metrics(report.metrics())
    for line in report.warnings(config.domain_shift):
        log.warning(line)


def generation_fingerprint(config: GenerateConfig, checkpoint: CheckpointManifest) -> str:
    """Everything that changes the members: settings, dates, and which weights (checkpoint run and step)."""
    settings = config.model_dump(
        mode="json", exclude={"output", "threads", "device", "batch_size", "domain_shift"}
    )
    settings["checkpoint"] = [
        checkpoint.producer.mlflow_run_id,
        checkpoint.step,
        str(config.checkpoint.resolve()),
    ]
    return fingerprint(settings)


def select_anchors(adapter: DownscalingDataset, config: GenerateConfig) -> np.ndarray:
    """The store time indices generation may use: the adapter's anchors, narrowed to `config.dates`."""
    anchors = adapter.windows.anchors
    if config.dates is None:
        return anchors
    keys = np.array([date_key(time) for time in adapter.times])
    chosen: list[np.ndarray] = []
    for text in config.dates:
        wanted = text.strip().replace(" ", "T")
        found = np.flatnonzero(np.char.startswith(keys.astype(str), wanted))
        if found.size == 0:
            raise ConfigError(
                f"dates: {text!r} matches no date of {config.dataset} (it holds {keys[0]} .. {keys[-1]}); "
                f"give ISO timestamps such as {keys[0]}"
            )
        chosen.append(found)
    return np.intersect1d(anchors, np.concatenate(chosen))


def run_generate(config: GenerateConfig, run: RunContext) -> None:
    ranks = join_ranks()
    try:
        generate_on_rank(config, run, ranks)
    finally:
        leave_ranks(ranks)


def generate_on_rank(config: GenerateConfig, run: RunContext, ranks: Ranks) -> None:
    """This rank's share of the date chunks; rank 0 also creates, completes and publishes the store."""
    checkpoint = read_manifest_folder(config.checkpoint, CheckpointManifest)
    run.record_input("checkpoint", config.checkpoint, checkpoint)
    transforms = VariableTransforms(checkpoint.transforms)
    region = select_region(config.region, config.dataset) if config.region is not None else None
    # The adapter builds each date's inputs exactly as in training (stacked steps, time features, context);
    # its anchors are the dates that have them, and load_split reads the same dates in physical units.
    adapter = DownscalingDataset(
        config.dataset,
        config.split,
        transforms,
        checkpoint.features,
        region=region.hr if region is not None else None,
    )
    arrays = load_split(
        config.dataset,
        config.split,
        every=config.date_stride,
        limit=config.max_dates,
        among=select_anchors(adapter, config),
        region=region.hr if region is not None else None,
    )
    grid = region.grid(arrays.manifest.grid) if region is not None else arrays.manifest.grid
    if region is not None:
        log.info("region %s: HR %dx%d of the dataset's %dx%d", region.description, *grid.hr_shape,
                 *arrays.manifest.grid.hr_shape)  # fmt: skip
    samples = np.searchsorted(adapter.windows.anchors, arrays.time_index)
    run.record_input("dataset", config.dataset, arrays.manifest)
    # A bad tiling is an error before anything is sampled.
    tiling = tiling_of(config, checkpoint.model_spec, tuple(grid.hr_shape))  # type: ignore[arg-type]
    check_compatible(checkpoint, arrays, config.dataset, tiled=tiling is not None, grid=grid)
    if tiling is not None:
        layout = tiling.layout(grid.hr_shape)
        log.info("tiling %dx%d, grown by a %d px mirrored border, in %d tiles of %dx%d (overlap %d), blended "
                 "at every step", *grid.hr_shape, tiling.border, layout.n_tiles, *tiling.tile,
                 tiling.overlap)  # fmt: skip
    elif config.tiling is None and any(
        n > p for n, p in zip(grid.hr_shape, checkpoint.model_spec.hr_shape, strict=True)
    ):
        log.warning(
            "tiling: null samples the %dx%d domain in one pass, larger than the %dx%d training patch",
            *grid.hr_shape, *checkpoint.model_spec.hr_shape,
        )  # fmt: skip
    if ranks.is_main:
        report_domain_shift(checkpoint, arrays, config, run)
    members = 1 if checkpoint.model_spec.kind == "regression" else config.members
    if members != config.members:
        log.info("regression checkpoint: generating 1 deterministic member per date")

    device = ranks.device(config.device)
    if config.device == "cuda" and device.type != "cuda":
        raise StrideError("device is 'cuda' but no CUDA device is visible; use 'auto' or 'cpu'")
    if config.threads:
        torch.set_num_threads(config.threads)
    weights = choose_weights(checkpoint, config)
    model = load_model(config.checkpoint, checkpoint, weights.file, device)
    log.info("sampling with %s (%s weights of step %d)", weights.file, weights.kind, weights.step)
    run.set_tags({"stride.input.checkpoint.weights": weights.file})

    n_dates = len(arrays.times)
    seeds = np.array(seed_table(config.seed, arrays.times, members), dtype=np.int64)
    has_target = bool(np.isfinite(arrays.target).any())
    fingerprint_ = generation_fingerprint(config, checkpoint)
    # Rank 0 creates the work folder and the store; the others open them once they exist.
    work = open_work_folder(config.output, fingerprint_) if ranks.is_main else None
    if ranks.is_main:
        assert work is not None
        SamplesStore(work).create(store_layout(arrays, seeds, checkpoint, grid))
    ranks.barrier()
    if work is None:
        work = open_work_folder(config.output, fingerprint_)
    store = SamplesStore(work)
    chunks = list(range(0, n_dates, config.dates_per_chunk))
    pending = store.pending(ranks.share(chunks))
    unfinished = store.pending(chunks) if ranks.is_main else []
    if ranks.is_main and len(unfinished) < len(chunks):
        left = sum(min(config.dates_per_chunk, n_dates - start) for start in unfinished)
        log.info("resumed: %d dates done, %d left", n_dates - left, left)
    where = f" on {ranks.world_size} ranks" if ranks.world_size > 1 else ""
    log.info(
        "sampling %d dates x %d members (%d chunks) on %s%s", n_dates, members, len(chunks), device, where
    )
    bound = IntensityBound.from_stats(
        [v.name for v in checkpoint.target], checkpoint.training_stats, config.intensity_bound.multiple
    )
    if bound is None and config.intensity_bound.multiple is not None:
        log.info("%s carries no training statistics: members are not bounded", config.checkpoint)
    fill_tally = FillTally()
    for start in progress(pending, total=len(pending), desc="date chunks"):
        stop = min(start + config.dates_per_chunk, n_dates)
        batch = collate_samples([adapter[int(i)] for i in samples[start:stop]])
        values = sample_dates(
            model,
            checkpoint,
            transforms,
            batch_to(batch, device),
            seeds[start:stop].tolist(),
            config,
            fill_tally,
        )
        if not np.isfinite(values).all():
            raise StrideError(
                f"sampling produced non-finite values; the checkpoint {config.checkpoint} may be broken"
            )
        if bound is not None:
            values = bound.apply(values)
        fields = ensemble_fields(values)
        fields["cond_dynamic"] = arrays.cond_dynamic[start:stop]
        fields["target"] = arrays.target[start:stop]
        store.write(start, fields)
    ranks.barrier()
    if not ranks.is_main:
        return
    missing = store.pending(chunks)
    if missing:  # a rank stopped without its chunks; the store stays unpublished, and a rerun resumes
        raise StrideError(
            f"{config.output}: date chunks starting at {missing[:5]} were not written; rerun the same command "
            f"to resume"
        )

    manifest = SamplesManifest(
        producer=run.producer(),
        inputs=run.inputs,
        target=checkpoint.target,
        dynamic=checkpoint.dynamic,
        static=checkpoint.static,
        grid=grid,
        split=config.split,
        n_members=members,
        base_seed=config.seed,
        seed_rule=SEED_RULE,
        sampler=config.sampler,
        use_ema=config.use_ema,
        model_kind=checkpoint.model_spec.kind,
        checkpoint_step=weights.step,
        transforms=checkpoint.transforms,
        has_target=has_target,
    )
    store.publish(manifest, config.output)
    close_work_folder(work)
    run.set_tags({"stride.samples.uri": config.output.resolve().as_uri()})
    run.log_metrics({"n_dates": float(n_dates), "n_members": float(members)})
    if bound is not None and bound.values:  # the dates sampled by this job (a resumed job counts its own)
        bound.log(log)
        run.log_metrics(bound.metrics())
    if (
        fill_tally.wet
    ):  # the share of hurdle-wet values whose intensity the gate filled (rain_gate.fill_lifted)
        log.info(
            "rain gate: %.3f of %d wet values had their intensity filled (wet_fill %s)",
            fill_tally.share,
            fill_tally.wet,
            config.rain_gate.wet_fill,
        )
        run.log_metrics({"rain_gate.filled_share": fill_tally.share})
    log.info("wrote %s (%d dates x %d members)", config.output, n_dates, members)


def store_layout(
    arrays: SplitArrays, seeds: np.ndarray, checkpoint: CheckpointManifest, grid: GridInfo
) -> StoreLayout:
    return StoreLayout(
        times=arrays.times,
        seeds=seeds,
        target_names=[v.name for v in checkpoint.target],
        dynamic_names=[v.name for v in checkpoint.dynamic],
        static_names=[v.name for v in checkpoint.static],
        hr_shape=tuple(grid.hr_shape),  # type: ignore[arg-type]
        lr_shape=tuple(grid.lr_shape),  # type: ignore[arg-type]
        cond_static=arrays.cond_static,
        coords=arrays.coords,
        has_target=True,
    )
