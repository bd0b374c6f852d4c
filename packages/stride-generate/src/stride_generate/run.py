"""`stride-generate` work: sample every chosen date, resumable chunk by chunk, then write samples.zarr."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import xarray as xr

from stride_contracts import CheckpointManifest, SamplesManifest
from stride_core.artifacts import read_manifest_folder, write_zarr_artifact
from stride_core.errors import ArtifactError, StrideError
from stride_core.metrics import probability_matched_mean
from stride_core.progress import get_logger, progress
from stride_core.resume import close_work_folder, fingerprint, open_work_folder
from stride_core.splits import SplitArrays, load_split
from stride_core.tracking import RunContext
from stride_core.transforms import VariableTransforms
from stride_generate.config import GenerateConfig
from stride_generate.domain_shift import measure_shift
from stride_generate.sampling import choose_weights, load_model, member_seeds, sample_dates
from stride_model.adapter import DownscalingDataset, batch_to, collate_samples

log = get_logger("stride-generate")


def check_compatible(checkpoint: CheckpointManifest, arrays: SplitArrays, dataset: Path) -> None:
    """The dataset must offer the variables and grid the model was trained on."""
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
    # The network is convolutional, so it runs on the whole domain whatever patch it was trained on, as long
    # as each level of the UNet halves it exactly.
    down = 2 ** (len(spec.channel_mult) - 1)
    if data.grid.hr_shape[0] % down or data.grid.hr_shape[1] % down:
        raise ArtifactError(
            f"{dataset}: HR grid {data.grid.hr_shape} is not divisible by {down} ({len(spec.channel_mult)} UNet "
            f"levels); crop the dataset with a region whose HR size divides by {down}"
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


def run_generate(config: GenerateConfig, run: RunContext) -> None:
    checkpoint = read_manifest_folder(config.checkpoint, CheckpointManifest)
    run.record_input("checkpoint", config.checkpoint, checkpoint)
    transforms = VariableTransforms(checkpoint.transforms)
    # The adapter builds each date's inputs exactly as in training (stacked steps, time features, context);
    # its anchors are the dates that have them, and load_split reads the same dates in physical units.
    adapter = DownscalingDataset(config.dataset, config.split, transforms, checkpoint.features)
    arrays = load_split(
        config.dataset,
        config.split,
        every=config.date_stride,
        limit=config.max_dates,
        among=adapter.windows.anchors,
    )
    samples = np.searchsorted(adapter.windows.anchors, arrays.time_index)
    run.record_input("dataset", config.dataset, arrays.manifest)
    check_compatible(checkpoint, arrays, config.dataset)
    report_domain_shift(checkpoint, arrays, config, run)
    members = 1 if checkpoint.model_spec.kind == "regression" else config.members
    if members != config.members:
        log.info("regression checkpoint: generating 1 deterministic member per date")

    device = torch.device("cuda" if config.device != "cpu" and torch.cuda.is_available() else "cpu")
    if config.device == "cuda" and device.type != "cuda":
        raise StrideError("device is 'cuda' but no CUDA device is visible; use 'auto' or 'cpu'")
    if config.threads:
        torch.set_num_threads(config.threads)
    weights = choose_weights(checkpoint, config)
    model = load_model(config.checkpoint, checkpoint, weights.file, device)
    log.info("sampling with %s (%s weights of step %d)", weights.file, weights.kind, weights.step)
    run.set_tags({"stride.input.checkpoint.weights": weights.file})

    # Each chunk of dates is saved as soon as it is sampled, so a killed job resumes where it stopped.
    folder = open_work_folder(config.output, generation_fingerprint(config, checkpoint))
    n_dates = len(arrays.times)
    seeds = [member_seeds(config, i, members) for i in range(n_dates)]
    chunks = list(range(0, n_dates, config.dates_per_chunk))
    log.info("sampling %d dates x %d members (%d chunks) on %s", n_dates, members, len(chunks), device)
    for start in progress(chunks, total=len(chunks), desc="date chunks"):
        part = folder / f"members_{start:06d}.npy"
        if part.is_file():
            continue
        stop = min(start + config.dates_per_chunk, n_dates)
        batch = collate_samples([adapter[int(i)] for i in samples[start:stop]])
        values = sample_dates(
            model, checkpoint, transforms, batch_to(batch, device), seeds[start:stop], config
        )
        np.save(folder / f".{part.name}", values)
        (folder / f".{part.name}").replace(part)
    ensemble = np.concatenate(
        [np.load(folder / f"members_{start:06d}.npy") for start in chunks], axis=0
    ).astype(np.float32)
    if not np.isfinite(ensemble).all():
        raise StrideError(
            f"sampling produced non-finite values; the checkpoint {config.checkpoint} may be broken"
        )
    pmm = probability_matched_mean(ensemble, member_axis=1).astype(np.float32)

    dataset = _samples_dataset(arrays, ensemble, pmm, np.array(seeds, dtype=np.int64), checkpoint)
    manifest = SamplesManifest(
        producer=run.producer(),
        inputs=run.inputs,
        target=checkpoint.target,
        dynamic=checkpoint.dynamic,
        static=checkpoint.static,
        grid=arrays.manifest.grid,
        split=config.split,
        n_members=members,
        base_seed=config.seed,
        sampler=config.sampler,
        use_ema=config.use_ema,
        model_kind=checkpoint.model_spec.kind,
        checkpoint_step=weights.step,
        transforms=checkpoint.transforms,
        has_target=bool(np.isfinite(arrays.target).any()),
    )
    write_zarr_artifact(dataset, manifest, config.output)
    close_work_folder(folder)
    run.set_tags({"stride.samples.uri": config.output.resolve().as_uri()})
    run.log_metrics({"n_dates": float(n_dates), "n_members": float(members)})
    log.info("wrote %s (%d dates x %d members)", config.output, n_dates, members)


def _samples_dataset(
    arrays: SplitArrays,
    ensemble: np.ndarray,
    pmm: np.ndarray,
    seeds: np.ndarray,
    checkpoint: CheckpointManifest,
) -> xr.Dataset:
    names = [v.name for v in checkpoint.target]
    dataset = xr.Dataset(
        {
            "members": (("time", "member", "var", "y", "x"), ensemble),
            "pmm": (("time", "var", "y", "x"), pmm),
            "target": (("time", "var", "y", "x"), arrays.target),
            "cond_dynamic": (("time", "dynamic_var", "y_lr", "x_lr"), arrays.cond_dynamic),
            "cond_static": (("static_var", "y", "x"), arrays.cond_static),
            "seeds": (("time", "member"), seeds),
        },
        coords={
            "time": arrays.times.values,
            "member": np.arange(ensemble.shape[1]),
            "var": np.array(names, dtype=object),
            "dynamic_var": np.array([v.name for v in checkpoint.dynamic], dtype=object),
            "static_var": np.array([v.name for v in checkpoint.static], dtype=object),
            **arrays.coords,
        },
    )
    dataset["members"].encoding["chunks"] = (1, *ensemble.shape[1:])
    return dataset
