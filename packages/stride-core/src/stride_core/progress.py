"""Progress display for long work (training steps, sampling), on stderr."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

from tqdm import tqdm

T = TypeVar("T")


def progress(items: Iterable[T], *, total: int | None = None, desc: str = "") -> Iterator[T]:
    """Wrap an iterable in a progress bar; `STRIDE_PROGRESS=0` turns it off (e.g. in batch logs)."""
    disable = os.environ.get("STRIDE_PROGRESS", "1") == "0"
    # A non-terminal (SLURM log, CI) gets a line every 10 s instead of a redrawn bar every 0.1 s.
    interval = 0.1 if sys.stderr.isatty() else 10.0
    yield from tqdm(items, total=total, desc=desc, file=sys.stderr, mininterval=interval, disable=disable)


def get_logger(tool: str) -> logging.Logger:
    """A logger printing `tool: message` to stderr."""
    logger = logging.getLogger(tool)
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(f"{tool}: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
    return logger
