"""Save and load state dicts safely (torch.load with weights_only=True) with errors naming the file."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor, nn


def save_weights(weights: nn.Module | Mapping[str, Tensor], path: str | os.PathLike[str]) -> Path:
    """Write a module's state dict (or a state dict) to path, atomically so a crash leaves no half file."""
    path = Path(path)
    state = weights.state_dict() if isinstance(weights, nn.Module) else dict(weights)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)
    return path


def load_weights(path: str | os.PathLike[str], map_location: str | torch.device = "cpu") -> dict[str, Tensor]:
    """Read a state dict saved by save_weights; only tensors and plain containers are unpickled."""
    path = Path(path)
    try:
        state = torch.load(path, weights_only=True, map_location=map_location)
    except Exception as err:  # torch raises several types (pickle, zip, OSError); all mean the same.
        raise ValueError(f"{path}: cannot load weights ({type(err).__name__}: {err})") from err
    if not isinstance(state, dict) or not all(
        isinstance(key, str) and isinstance(value, Tensor) for key, value in state.items()
    ):
        raise ValueError(f"{path}: expected a state dict (str -> Tensor), got {type(state).__name__}")
    return state


def load_into(
    module: nn.Module, path: str | os.PathLike[str], map_location: str | torch.device = "cpu"
) -> nn.Module:
    """Load weights from path into module, requiring exactly the module's keys and shapes."""
    state = load_weights(path, map_location)
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    mismatched = [
        f"{key}: file {list(state[key].shape)} vs model {list(expected[key].shape)}"
        for key in sorted(set(expected) & set(state))
        if state[key].shape != expected[key].shape
    ]
    if missing or unexpected or mismatched:
        raise ValueError(
            f"{path}: weights do not match the model (was it built from the same ModelSpec?); "
            f"missing keys {_preview(missing)}, unexpected keys {_preview(unexpected)}, "
            f"shape mismatches {_preview(mismatched)}"
        )
    module.load_state_dict(state)
    return module


def _preview(items: list[str], limit: int = 5) -> str:
    shown = ", ".join(items[:limit])
    more = f" and {len(items) - limit} more" if len(items) > limit else ""
    return f"[{shown}{more}]"
