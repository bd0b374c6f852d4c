"""Training data: the transforms from the offline stats, and the adapter's datasets for train and validation."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from stride_contracts import DatasetManifest
from stride_contracts.checkpoint import TransformSet, VariableTransform
from stride_core.features import ChannelCounts, channel_counts
from stride_core.patches import RainWeighting
from stride_core.progress import get_logger
from stride_core.transforms import VariableTransforms, spec_from_stats
from stride_core.variables import VariableRegistry
from stride_model.adapter import DownscalingDataset
from stride_train.config import TrainConfig

log = get_logger("stride-train")


def build_transform_set(
    stats: pd.DataFrame, manifest: DatasetManifest, registry: VariableRegistry, overrides: dict[str, str]
) -> TransformSet:
    """Each variable's transform, its kind from the config override or the registry default."""

    def entries(role: str, names: list[str]) -> list[VariableTransform]:
        return [
            VariableTransform(
                variable=name,
                transform=spec_from_stats(
                    stats, role, name, overrides.get(name, registry[name].transform_default)
                ),
            )
            for name in names
        ]

    return TransformSet(
        target=entries("target", [v.name for v in manifest.target]),
        dynamic=entries("dynamic", [v.name for v in manifest.dynamic]),
        static=entries("static", [v.name for v in manifest.static]),
    )


@dataclass
class TrainingData:
    """The datasets one training run reads.

    `train` draws a random patch per sample; `val` gives each validation date one fixed patch of the same
    shape (for the validation loss); `val_full` gives whole-domain validation dates (inline evaluation).
    """

    train: DownscalingDataset
    val: DownscalingDataset | None
    val_full: DownscalingDataset | None
    counts: ChannelCounts


def _store_mb(path: Path, manifest: DatasetManifest) -> float:
    """Uncompressed size of the store's time-varying arrays, in MB."""
    hr = manifest.grid.hr_shape[0] * manifest.grid.hr_shape[1]
    lr = manifest.grid.lr_shape[0] * manifest.grid.lr_shape[1]
    per_step = len(manifest.target) * hr + len(manifest.dynamic) * lr
    return manifest.n_times * per_step * 4 / 2**20


def open_training_data(
    config: TrainConfig, manifest: DatasetManifest, transforms: VariableTransforms
) -> TrainingData:
    data = config.data
    in_memory = data.in_memory
    if in_memory is None:
        in_memory = _store_mb(config.dataset, manifest) <= data.in_memory_limit_mb
    log.info(
        "reading %s %s, %s",
        config.dataset,
        "into memory" if in_memory else "lazily (patch by patch)",
        f"random {data.patch[0]}x{data.patch[1]} HR patches" if data.patch else "whole domain",
    )
    gate = config.model.rain_gate

    def dataset(
        split: str, patch: tuple[int, int] | None, weighting: RainWeighting | None = None
    ) -> DownscalingDataset:
        return DownscalingDataset(
            config.dataset,
            split,
            transforms,
            data.features,
            patch_shape=patch,
            seed=config.training.seed,
            rain_weighting=weighting,
            wet_threshold=gate.threshold if gate is not None else None,
            in_memory=in_memory,
        )

    train = dataset("train", data.patch, data.rain_weighting)
    has_val = "val" in manifest.splits
    val = dataset("val", data.patch) if has_val else None
    val_full = val
    if val is not None and data.patch is not None and config.inline_eval.every is not None:
        val_full = dataset("val", None)
    return TrainingData(train, val, val_full, channel_counts(manifest, data.features, data.patch))
