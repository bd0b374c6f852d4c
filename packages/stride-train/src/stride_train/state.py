"""Resumable training state (weights, EMA, optimizer, RNG) saved in the run's work folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from stride_core.errors import ConfigError
from stride_core.resume import fingerprint

STATE_FILE = "state.pt"
# How a run computes, not what: a job may resume with another thread count, device, layout or compiler
# setting (and another number of processes, which is not a setting at all).
IGNORED_FOR_RESUME = ("threads", "device", "state_every", "log_every", "channels_last", "compile")


def training_fingerprint(config_dump: dict[str, Any]) -> str:
    """Fingerprint of the settings that change results (not threads, device, logging cadence or output)."""
    relevant = {key: value for key, value in config_dump.items() if key != "output"}
    relevant["training"] = {k: v for k, v in config_dump["training"].items() if k not in IGNORED_FOR_RESUME}
    return fingerprint(relevant)


def save_state(folder: Path, state: dict[str, Any]) -> None:
    staging = folder / f"{STATE_FILE}.partial"
    torch.save(state, staging)
    staging.replace(folder / STATE_FILE)


def load_state(folder: Path) -> dict[str, Any] | None:
    """The state saved by a killed run, if any."""
    path = folder / STATE_FILE
    if not path.is_file():
        return None
    try:
        state: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ConfigError(
            f"{path}: unreadable resume state ({type(exc).__name__}); delete {folder} to start over"
        ) from None
    return state
