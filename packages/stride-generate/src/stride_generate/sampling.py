"""Load a checkpoint's model and sample ensembles for dates, in physical units."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from stride_contracts import CheckpointManifest
from stride_core.errors import ArtifactError
from stride_core.progress import get_logger
from stride_core.transforms import VariableTransforms
from stride_generate.config import GenerateConfig
from stride_model import (
    ConditionedModel,
    apply_rain_gate,
    assemble_conditioning,
    build_model,
    load_into,
    sample_ensemble,
)

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
    cond_dynamic: np.ndarray,
    cond_static: np.ndarray,
    seeds: list[list[int]],
    config: GenerateConfig,
    device: torch.device,
) -> np.ndarray:
    """Members [dates, members, C_out, H, W] in physical units for physical LR conditioning [dates, C, h, w]."""
    spec = manifest.model_spec
    dynamic, static = transforms.forward_conditioning(
        cond_dynamic, np.broadcast_to(cond_static, (len(cond_dynamic), *cond_static.shape))
    )
    assert static is not None
    batch = {
        "cond_dynamic": torch.from_numpy(dynamic).to(device),
        "cond_static": torch.from_numpy(np.ascontiguousarray(static)).to(device),
    }
    condition = assemble_conditioning(batch, spec)
    if spec.kind == "regression":
        prediction = model(condition)[:, None]
    else:
        settings = config.sampler
        prediction = sample_ensemble(
            model,
            condition,
            seeds,
            spec.out_channels,
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
    model_space = prediction.float().cpu().numpy()
    physical = transforms.inverse_target(model_space)
    if spec.use_rain_gate and isinstance(model, ConditionedModel):
        wet_logits = model.rain_gate_logits(condition).cpu()
        physical = apply_rain_gate(torch.from_numpy(physical), wet_logits).numpy()
    return physical
