"""Atomic outputs: an artifact appears under its final name only once it is complete."""

from __future__ import annotations

import errno
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from stride_core.errors import StrideError


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
    except BaseException as exc:
        full = _disk_full(exc)
        written = _size(staging) if full else 0  # walking a large staging tree only when it is reported
        _remove(staging)
        if full:
            free = shutil.disk_usage(final.parent).free
            raise StrideError(
                f"{final}: the disk ran out of space after {written / 2**20:.1f} MiB were written "
                f"({free / 2**20:.1f} MiB free now on that filesystem); nothing was published and the partial "
                f"output was removed: free space there or write the output elsewhere"
            ) from None
        raise
    publish(staging, final)
    remove_stale_partials(final)


def remove_stale_partials(final: Path) -> None:
    """Delete what killed runs left of this output (`.NAME.partial-*`, `.NAME.old-*`) once it is published."""
    for prefix in (f".{final.name}.partial-", f".{final.name}.old-"):
        for stale in final.parent.glob(f"{prefix}*"):
            _remove(stale)


def _disk_full(exc: BaseException) -> bool:
    """Whether an error (or one it was raised from) means the disk is full; codecs and stores wrap ENOSPC."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno == errno.ENOSPC:
            return True
        text = str(current)
        if "No space left on device" in text or "errno 28" in text.lower() or "disk is full" in text:
            return True
        if isinstance(current, OSError) and " requested and " in text and text.endswith("written"):
            return True  # numpy's short write (np.save, tofile) on a full disk carries no errno
        current = current.__cause__ or current.__context__
    return False


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return 0


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
