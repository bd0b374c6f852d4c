"""Save and load state dicts safely (torch.load with weights_only=True) with errors naming the file."""

from __future__ import annotations

import os
import pickle
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
    except pickle.UnpicklingError as err:
        if not _refused_object(err):
            raise ValueError(_unreadable(path, err)) from None
        # torch's weights-only unpickler refused a Python object that is not a tensor or plain container:
        # never load it otherwise, and never pass on torch's advice to turn the protection off.
        raise ValueError(
            f"{path}: not a STRIDE weights file, or it has been tampered with: it holds Python objects other "
            f"than tensors, which are refused without being run; use the checkpoint stride-train wrote"
        ) from None
    except Exception as err:  # torch raises several types (zip, EOF, OSError); all mean the same.
        raise ValueError(_unreadable(path, err)) from None
    if not isinstance(state, dict) or not all(
        isinstance(key, str) and isinstance(value, Tensor) for key, value in state.items()
    ):
        raise ValueError(f"{path}: expected a state dict (str -> Tensor), got {type(state).__name__}")
    return state


def _refused_object(err: pickle.UnpicklingError) -> bool:
    """Whether torch refused a global (a class or function) rather than failing to parse the file."""
    text = str(err)
    return "Unsupported global" in text or "can still be loaded" in text


def _unreadable(path: Path, err: Exception) -> str:
    # Only the exception type: torch's messages span many lines and suggest weights_only=False.
    return (
        f"{path}: cannot load weights ({type(err).__name__}); the file is damaged or not a weights file: "
        f"re-run stride-train or restore the checkpoint"
    )


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
