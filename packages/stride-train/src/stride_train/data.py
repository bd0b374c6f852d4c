"""Training data in model space: transformed splits, NaN masks, and contract-A batches as tensors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from stride_contracts.checkpoint import TransformSet, VariableTransform
from stride_core.splits import SplitArrays
from stride_core.transforms import VariableTransforms, spec_from_stats
from stride_core.variables import VariableRegistry


@dataclass
class ModelSpaceSplit:
    """A split after the transforms: NaN targets set to 0 with a validity mask beside them."""

    arrays: SplitArrays
    target: torch.Tensor
    mask: torch.Tensor
    cond_dynamic: torch.Tensor
    cond_static: torch.Tensor

    def __len__(self) -> int:
        return int(self.target.shape[0])

    def batch(self, index: np.ndarray, device: torch.device) -> dict[str, Any]:
        """A contract-A batch for the given time indices."""
        idx = torch.as_tensor(index, dtype=torch.long)
        return {
            "target": self.target[idx].to(device),
            "mask": self.mask[idx].to(device),
            "cond_dynamic": self.cond_dynamic[idx].to(device),
            "cond_static": self.cond_static.expand(len(index), -1, -1, -1).to(device),
            "cond_coord": None,
            "meta": {"timestamps": [self.arrays.times[i] for i in index]},
        }


def build_transform_set(
    stats: pd.DataFrame, arrays: SplitArrays, registry: VariableRegistry, overrides: dict[str, str]
) -> TransformSet:
    """Each variable's transform, its kind from the config override or the registry default."""
    manifest = arrays.manifest

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


def to_model_space(arrays: SplitArrays, transforms: VariableTransforms) -> ModelSpaceSplit:
    valid = np.isfinite(arrays.target)
    target = np.where(valid, transforms.forward_target(np.nan_to_num(arrays.target)), 0.0)
    dynamic, static = transforms.forward_conditioning(arrays.cond_dynamic, arrays.cond_static[None])
    assert static is not None
    return ModelSpaceSplit(
        arrays=arrays,
        target=torch.from_numpy(target.astype(np.float32)),
        mask=torch.from_numpy(valid),
        cond_dynamic=torch.from_numpy(dynamic),
        cond_static=torch.from_numpy(static),
    )
