"""Perturbation-response diagnostic: does the model carry an imposed LR change through to the HR output?

A climate-change signal reaches a downscaling model as a shift of its LR inputs. This adds +delta to one LR
input (e.g. +2 K to temperature) or scales it (e.g. x1.2 precipitation) in physical units, samples the same
members with the same seeds as the unperturbed inputs (common random numbers, so sampling noise cancels),
and compares the HR response with the imposed change. A ratio near 1 means the signal is carried through;
near 0 means the model ignores its LR input there and would erase a warming signal.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from stride_core.transforms import VariableTransforms

Sampler = Callable[[dict[str, Any]], NDArray[np.float32]]
"""Maps a contract-A batch to members [B, M, C_out, H, W] in physical units."""


@dataclass(frozen=True)
class PerturbationResult:
    """Mean imposed LR change and mean HR response of the target of the same name (physical units)."""

    variable: str
    imposed: float
    response: float

    @property
    def ratio(self) -> float:
        return self.response / self.imposed if self.imposed else float("nan")

    def metrics(self) -> dict[str, float]:
        prefix = f"perturb.{self.variable}"
        return {
            f"{prefix}.imposed": self.imposed,
            f"{prefix}.response": self.response,
            f"{prefix}.ratio": self.ratio,
        }


def perturbed_batch(
    batch: dict[str, Any],
    transforms: VariableTransforms,
    channel: int,
    *,
    add: float = 0.0,
    scale: float = 1.0,
) -> tuple[dict[str, Any], float]:
    """The batch with LR dynamic channel `channel` changed to scale * x + add in physical units, and the
    mean physical change imposed on it (over the LR box and the context region alike)."""
    out = dict(batch)
    imposed = []
    for key in ("cond_dynamic", "cond_context"):
        if key not in batch or batch[key] is None:
            continue
        model_space = batch[key].detach().cpu().numpy()
        # cond_context flattens (T, C) into channels T-major; unflatten so the channel axis is -3.
        shaped = model_space.reshape(
            model_space.shape[0], -1, len(transforms.spec.dynamic), *model_space.shape[-2:]
        )
        physical, _ = transforms.inverse_conditioning(shaped)
        changed = physical.copy()
        changed[:, :, channel] = scale * physical[:, :, channel] + add
        imposed.append(float((changed[:, :, channel] - physical[:, :, channel]).mean()))
        forward, _ = transforms.forward_conditioning(changed)
        out[key] = torch.from_numpy(forward.reshape(model_space.shape)).to(batch[key].device)
    return out, imposed[0]


def perturbation_response(
    sample: Sampler,
    batch: dict[str, Any],
    transforms: VariableTransforms,
    variable: str,
    *,
    add: float = 0.0,
    scale: float = 1.0,
    baseline: NDArray[np.float32] | None = None,
) -> PerturbationResult:
    """Sample with and without the perturbation of LR `variable` and compare the ensemble means.

    The HR response is taken on the target of the same name (or the only target); `baseline` reuses members
    already sampled from the unperturbed batch with the same seeds.
    """
    dynamic = [entry.variable for entry in transforms.spec.dynamic]
    targets = [entry.variable for entry in transforms.spec.target]
    if variable not in dynamic:
        raise ValueError(f"perturbation variable '{variable}' is not an LR input; inputs are {dynamic}")
    if variable not in targets and len(targets) > 1:
        raise ValueError(f"perturbation variable '{variable}' is not a target; targets are {targets}")
    target_channel = targets.index(variable) if variable in targets else 0
    changed, imposed = perturbed_batch(batch, transforms, dynamic.index(variable), add=add, scale=scale)
    before = sample(batch) if baseline is None else baseline
    after = sample(changed)
    response = np.nanmean(after[:, :, target_channel] - before[:, :, target_channel])
    return PerturbationResult(variable, imposed, float(response))
