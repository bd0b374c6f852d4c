"""Load a checkpoint's model and sample ensembles for dates, in physical units."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from stride_contracts import CheckpointManifest
from stride_core.errors import ArtifactError
from stride_core.progress import get_logger
from stride_core.transforms import VariableTransforms
from stride_generate.config import GenerateConfig
from stride_model import assemble_conditioning, build_model, load_into
from stride_model.members import physical_members

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
    except (ValueError, OSError, RuntimeError) as exc:
        raise ArtifactError(f"{weights}: cannot load weights ({exc}); the checkpoint is corrupt") from None
    return model.to(device).eval()


def member_seeds(config: GenerateConfig, date_index: int, members: int) -> list[int]:
    """Seeds of one date's members: unique per (date, member), independent of batching."""
    return [config.seed + date_index * members + k for k in range(members)]


@torch.no_grad()
def sample_dates(
    model: torch.nn.Module,
    manifest: CheckpointManifest,
    transforms: VariableTransforms,
    batch: dict[str, Any],
    seeds: list[list[int]],
    config: GenerateConfig,
) -> np.ndarray:
    """Members [dates, members, C_out, H, W] in physical units for a contract-A batch of whole-domain dates."""
    spec = manifest.model_spec
    settings = config.sampler
    return physical_members(
        model,
        spec,
        assemble_conditioning(batch, spec),
        seeds,
        transforms,
        num_steps=settings.steps,
        sigma_min=settings.sigma_min,
        sigma_max=settings.sigma_max,
        rho=settings.rho,
        S_churn=settings.S_churn,
        S_min=settings.S_min,
        S_max=settings.S_max,
        S_noise=settings.S_noise,
        batch_size=config.batch_size,
    )
