"""Atomic outputs: an artifact appears under its final name only once it is complete."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def staging_path(final: Path) -> Path:
    """A hidden sibling of `final` to build into; it never looks like a finished artifact."""
    return final.parent / f".{final.name}.partial-{uuid.uuid4().hex[:8]}"


@contextmanager
def atomic_output(final: Path) -> Iterator[Path]:
    """Yield a staging path; on success move it onto `final` (replacing any old one), on error delete it."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = staging_path(final)
    try:
        yield staging
    except BaseException:
        _remove(staging)
        raise
    publish(staging, final)


def publish(staging: Path, final: Path) -> None:
    """Move a finished staging file or folder onto `final`; the old artifact is kept until the swap."""
    if final.exists():
        retired = final.parent / f".{final.name}.old-{uuid.uuid4().hex[:8]}"
        os.replace(final, retired)
        os.replace(staging, final)
        _remove(retired)
    else:
        os.replace(staging, final)


def write_text_atomic(path: Path, text: str) -> None:
    """Write a small text file so that readers see either the old or the new content."""
    with atomic_output(path) as staging:
        staging.write_text(text)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink(missing_ok=True)
