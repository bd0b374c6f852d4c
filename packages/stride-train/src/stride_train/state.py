"""Resumable training state in a fixed work folder beside the output, so a killed or requeued job continues."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import torch

from stride_core.errors import ConfigError

STATE_FILE = "state.pt"
IGNORED_FOR_RESUME = ("threads", "device", "state_every", "log_every")


def work_folder(output: Path) -> Path:
    """`.checkpoint.inprogress` beside `checkpoint`: hidden, never mistaken for a finished artifact."""
    return output.parent / f".{output.name}.inprogress"


def config_fingerprint(config_dump: dict[str, Any]) -> str:
    """Hash of the settings that change results (not threads, device or logging cadence)."""
    relevant = json.loads(json.dumps(config_dump, default=str))
    for key in IGNORED_FOR_RESUME:
        relevant["training"].pop(key, None)
    relevant.pop("output", None)
    return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()[:16]


def save_state(folder: Path, state: dict[str, Any]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    staging = folder / f"{STATE_FILE}.partial"
    torch.save(state, staging)
    staging.replace(folder / STATE_FILE)


def load_state(folder: Path, fingerprint: str) -> dict[str, Any] | None:
    """The saved state if one exists for this config; a state from another config is an error, not ignored."""
    path = folder / STATE_FILE
    if not path.is_file():
        return None
    try:
        state: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ConfigError(
            f"{path}: unreadable resume state ({type(exc).__name__}); delete {folder} to start over"
        ) from None
    if state.get("fingerprint") != fingerprint:
        raise ConfigError(
            f"{path}: resume state belongs to a run with a different config; restore that config to resume, "
            f"or delete {folder} to start over"
        )
    return state


def clear(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
