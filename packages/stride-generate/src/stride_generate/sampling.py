"""Load a checkpoint's model and sample ensembles for dates, in physical units."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from stride_contracts import CheckpointManifest
from stride_contracts.checkpoint import ModelSpec
from stride_core.errors import ArtifactError, ConfigError
from stride_core.progress import get_logger
from stride_core.transforms import VariableTransforms
from stride_generate.config import GenerateConfig
from stride_model import assemble_conditioning, build_model, load_into
from stride_model.members import physical_members
from stride_model.rain_gate import FillTally
from stride_model.sampling import Tiling, auto_tiling, sampler_kwargs

log = get_logger("stride-generate")


@dataclass(frozen=True)
class ChosenWeights:
    """The weights file of a checkpoint to sample with, and the training step it holds."""

    file: str
    step: int
    kind: Literal["best", "last"]


def choose_weights(manifest: CheckpointManifest, config: GenerateConfig) -> ChosenWeights:
    """Best EMA weights when asked for and present, else the last (EMA or raw) weights."""
    if not config.use_ema:
        return ChosenWeights(manifest.weights_file, manifest.step, "last")
    if config.weights == "best":
        if manifest.best_ema_weights_file is not None and manifest.best_step is not None:
            return ChosenWeights(manifest.best_ema_weights_file, manifest.best_step, "best")
        log.info(
            "%s has no best weights (trained without a validation split); using the last EMA weights",
            config.checkpoint,
        )
    return ChosenWeights(manifest.ema_weights_file, manifest.step, "last")


def load_model(
    checkpoint: Path, manifest: CheckpointManifest, weights_file: str, device: torch.device
) -> torch.nn.Module:
    model = build_model(manifest.model_spec)
    weights = checkpoint / weights_file
    try:
        load_into(model, weights)
    except ValueError as exc:  # load_into's messages name the file and the fix already
        raise ArtifactError(str(exc)) from None
    except (OSError, RuntimeError) as exc:
        raise ArtifactError(f"{weights}: cannot load weights ({exc}); the checkpoint is corrupt") from None
    return model.to(device).eval()


@torch.no_grad()
def sample_dates(
    model: torch.nn.Module,
    manifest: CheckpointManifest,
    transforms: VariableTransforms,
    batch: dict[str, Any],
    seeds: list[list[int]],
    config: GenerateConfig,
    fill_tally: FillTally | None = None,
) -> np.ndarray:
    """Members [dates, members, C_out, H, W] in physical units for a contract-A batch of whole-domain dates.

    fill_tally (optional) counts the hurdle-wet pixels whose intensity the RainGate filled.

    Dates are sampled one at a time: a network call then holds the members of one date only, always split
    the same way, so a member is bit-identical in any run that contains its date (CPU convolution kernels
    round differently with the batch size, by about 1e-6).
    """
    spec = manifest.model_spec
    cond = assemble_conditioning(batch, spec)
    tiling = tiling_of(config, spec, (int(cond.image.shape[-2]), int(cond.image.shape[-1])))
    per_date = [
        physical_members(
            model,
            spec,
            cond[index : index + 1],
            seeds[index : index + 1],
            transforms,
            rain_gate=config.rain_gate.rule,
            rain_gate_length=config.rain_gate.length,
            wet_fill=config.rain_gate.wet_fill,
            fill_tally=fill_tally,
            **sampler_kwargs(config.sampler),
            batch_size=config.batch_size,
            tiling=tiling,
        )
        for index in range(len(seeds))
    ]
    return np.concatenate(per_date, axis=0)


def tiling_of(config: GenerateConfig, spec: ModelSpec, domain: tuple[int, int]) -> Tiling | None:
    """The sampler's tiling of an HR domain: tiles of the checkpoint's training patch where the domain is larger.

    Checked against the checkpoint: the tile must be its training patch, the overlap smaller than the tile.
    """
    if config.tiling is None:
        return None
    patch = (int(spec.hr_shape[0]), int(spec.hr_shape[1]))
    tile = patch if config.tiling.tile is None else (int(config.tiling.tile[0]), int(config.tiling.tile[1]))
    if tile != patch:
        raise ConfigError(
            f"tiling.tile: {list(tile)} differs from the checkpoint's training patch {list(patch)}; set "
            f"tiling.tile={list(patch)} (or leave it out)"
        )
    try:
        return auto_tiling(
            domain,
            patch,
            spec.factor,
            overlap=config.tiling.overlap,
            tile_batch=config.tiling.tile_batch,
            border=config.tiling.border,
        )
    except ValueError as exc:  # auto_tiling's messages name the field and the fix
        raise ConfigError(str(exc)) from None
