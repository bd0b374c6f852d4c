"""Work folders for resumable jobs: a hidden folder beside the output, tied to the settings that made it."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import cftime

from stride_core.calendars import iso
from stride_core.errors import ConfigError

FINGERPRINT_FILE = "fingerprint"


def work_folder(output: Path) -> Path:
    """`.NAME.inprogress` beside NAME: hidden, and never mistaken for a finished artifact."""
    return output.parent / f".{output.name}.inprogress"


def fingerprint(settings: dict[str, Any]) -> str:
    """A short hash of the settings that change results.

    Dates of any calendar may be among them: a cftime date hashes as its ISO stamp and calendar, so the same
    label in a `360_day` and a `noleap` run differs (other values hash as `str`, as before calendars).
    """
    text = json.dumps(settings, sort_keys=True, default=_as_text)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _as_text(value: Any) -> str:
    if isinstance(value, cftime.datetime):
        return f"{iso(value)} {value.calendar}"
    return str(value)


def open_work_folder(output: Path, settings_fingerprint: str) -> Path:
    """Create the work folder, or reuse one left by a killed run with the same settings.

    A folder from other settings is an error rather than silently reused or wiped: its partial results
    belong to another configuration, and deleting them is the user's call.
    """
    folder = work_folder(output)
    marker = folder / FINGERPRINT_FILE
    if folder.exists():
        found = marker.read_text().strip() if marker.is_file() else "none"
        if found != settings_fingerprint:
            raise ConfigError(
                f"{folder}: holds partial results of a run with different settings ({found}, now "
                f"{settings_fingerprint}); restore those settings to resume, or delete the folder to start over"
            )
        return folder
    folder.mkdir(parents=True)
    marker.write_text(settings_fingerprint + "\n")
    return folder


def close_work_folder(folder: Path) -> None:
    """Remove the work folder once the final artifact is published."""
    shutil.rmtree(folder, ignore_errors=True)
